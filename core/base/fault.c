#include "base/fault.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *points;

static void load(void)
{
    points = getenv("AGENTCORE_FAULT");
}

int ac_fault(const char *point)
{
    pthread_once(&once, load);
    if (points == NULL || *points == '\0')
        return 0;
    size_t n = strlen(point);
    for (const char *p = points; (p = strstr(p, point)) != NULL; p += n)
        if ((p == points || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}
