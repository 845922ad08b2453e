#include "service/crashlog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/uuid.h"

#define FILE_NAME "crashed-jobs"

static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define N_FATAL ((int)(sizeof fatal / sizeof fatal[0]))

static char path[4096];
static struct sigaction previous[N_FATAL];
/* initial-exec: reading it in a signal handler must not allocate */
static __thread char current[AC_UUID_LEN + 2] __attribute__((tls_model("initial-exec")));

static void on_fatal(int sig, siginfo_t *info, void *uctx)
{
    if (current[0] != '\0') {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ssize_t w = write(fd, current, AC_UUID_LEN + 1); /* "<id>\n" */
            (void)w;
            close(fd);
        }
    }
    for (int i = 0; i < N_FATAL; i++) {
        if (fatal[i] != sig)
            continue;
        /* hand it on: the previous handler (a sanitizer's report), else the default action */
        if ((previous[i].sa_flags & SA_SIGINFO) && previous[i].sa_sigaction != NULL) {
            previous[i].sa_sigaction(sig, info, uctx);
        } else if (previous[i].sa_handler != SIG_DFL && previous[i].sa_handler != SIG_IGN &&
                   previous[i].sa_handler != NULL) {
            previous[i].sa_handler(sig);
        }
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

int ac_crashlog_install(const char *data_dir, ac_err_t *err)
{
    if ((size_t)snprintf(path, sizeof path, "%s/%s", data_dir, FILE_NAME) >= sizeof path)
        return ac_err_set(err, AC_ERR_INTERNAL, "data directory path too long");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_FATAL; i++)
        if (sigaction(fatal[i], &sa, &previous[i]) != 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "sigaction: %s", strerror(errno));
    return 0;
}

void ac_crashlog_set_job(const char *job_id)
{
    if (job_id == NULL) {
        current[0] = '\0';
        return;
    }
    memcpy(current, job_id, AC_UUID_LEN);
    current[AC_UUID_LEN] = '\n';
    current[AC_UUID_LEN + 1] = '\0';
}

void ac_crashlog_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

int ac_crashlog_read(const char *data_dir, char ***ids, size_t *n, ac_err_t *err)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/%s", data_dir, FILE_NAME);
    *ids = NULL;
    *n = 0;
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "%s: %s", file, strerror(errno));
    char line[128];
    size_t cap = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (!ac_uuid_valid(line, strlen(line)))
            continue; /* a line cut by a crash during the write */
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **grown = realloc(*ids, cap * sizeof *grown);
            if (grown == NULL)
                break;
            *ids = grown;
        }
        if (((*ids)[*n] = strdup(line)) != NULL)
            (*n)++;
    }
    fclose(f);
    return 0;
}

void ac_crashlog_clear(const char *data_dir)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/%s", data_dir, FILE_NAME);
    unlink(file);
}
