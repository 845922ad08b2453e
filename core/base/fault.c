#include "base/fault.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A fixed buffer rather than a malloc'd copy: nothing to free at exit (LeakSanitizer), and a
 * mutex because tests may change it while worker threads ask. The points sit on paths that
 * cost a durable commit, so the lock is noise. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int loaded;
static char points[256];

static void set_locked(const char *p)
{
    size_t n = p != NULL ? strlen(p) : 0;
    if (n >= sizeof points)
        n = sizeof points - 1;
    memcpy(points, p != NULL ? p : "", n);
    points[n] = '\0';
    loaded = 1;
}

int ac_fault(const char *point)
{
    pthread_mutex_lock(&lock);
    if (!loaded)
        set_locked(getenv("AGENTCORE_FAULT"));
    int on = 0;
    size_t n = strlen(point);
    for (const char *p = points; !on && n > 0 && (p = strstr(p, point)) != NULL; p += n)
        if ((p == points || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            on = 1;
    pthread_mutex_unlock(&lock);
    return on;
}

void ac_fault_set(const char *p)
{
    pthread_mutex_lock(&lock);
    set_locked(p);
    pthread_mutex_unlock(&lock);
}
