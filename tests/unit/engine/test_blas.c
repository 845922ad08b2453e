/* OpenBLAS kernel choice: the re-exec mechanism, the fallback re-exec, and the self-check.
 * Nothing here depends on which kernel runs: only on the mechanism doing what it says. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/blas.h"
#include "engine_check.h"

/* Run as the re-executed child of ac_blas_fallback_reexec: the fallback must have removed the
 * automatic choice and disabled further re-execs. Exit status says whether it did. */
static int report_fallback_env(void)
{
    int ok = getenv("OPENBLAS_CORETYPE") == NULL && getenv("AGENTCORE_BLAS_AUTO") == NULL &&
             getenv("AGENTCORE_NO_REEXEC") != NULL;
    ac_err_t err = AC_ERR_INIT;
    ok = ok && ac_blas_selfcheck(&err) == 0;
    return ok ? 0 : 3;
}

int main(int argc, char **argv)
{
    int user_set = getenv("OPENBLAS_CORETYPE") != NULL, no_reexec = getenv("AGENTCORE_NO_REEXEC") != NULL;
    ac_blas_maybe_reexec(argc, argv); /* first thing, as main.c does */
    if (argc == 2 && strcmp(argv[1], "--fallback-child") == 0)
        return report_fallback_env();

    const char *want = ac_blas_cpu_coretype();
    const char *autoset = getenv("AGENTCORE_BLAS_AUTO");
    fprintf(stderr, "cpu coretype %s, OPENBLAS_CORETYPE=%s, auto=%s, kernel %s\n", want ? want : "(none)",
            getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
            autoset ? autoset : "(unset)", ac_blas_kernel());
    /* After maybe_reexec, a CPU with a better kernel always runs with OPENBLAS_CORETYPE set
     * (by the user, or by us with the marker), unless re-exec is disabled. */
    if (want != NULL && !no_reexec && !user_set)
        CHECK(autoset != NULL && strcmp(getenv("OPENBLAS_CORETYPE"), want) == 0);
    if (autoset != NULL)
        CHECK(getenv("OPENBLAS_CORETYPE") && strcmp(getenv("OPENBLAS_CORETYPE"), autoset) == 0);
    CHECK(ac_blas_kernel()[0] != '\0');

    ac_err_t err = AC_ERR_INIT;
    for (int threads = 1; threads <= 2; threads++) {
        ac_blas_set_threads(threads);
        int rc = ac_blas_selfcheck(&err);
        if (rc != 0)
            fprintf(stderr, "%s\n", err.message);
        CHECK(rc == 0);
    }

    /* Fallback without an automatic choice: nothing to fall back to, an error and no exec. */
    char *saved = autoset ? strdup(autoset) : NULL;
    unsetenv("AGENTCORE_BLAS_AUTO");
    CHECK(ac_blas_fallback_reexec(argv, &err) == -1 && err.code == AC_ERR_INTERNAL);
    ac_err_clear(&err);
    /* Fallback with one: a child pretends its kernel was chosen automatically and failed; the
     * process it re-executes into must run with the default kernel and no further re-exec. */
    pid_t pid = fork();
    if (pid == 0) {
        setenv("AGENTCORE_BLAS_AUTO", "SkylakeX", 1);
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        char *child_argv[] = {argv[0], "--fallback-child", NULL};
        ac_blas_fallback_reexec(child_argv, NULL);
        _exit(4); /* exec failed */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (saved) {
        setenv("AGENTCORE_BLAS_AUTO", saved, 1);
        free(saved);
    }
    return test_result("test_blas");
}
