/* OpenBLAS kernel choice and self-check.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) detects this machine's CPU as Prescott and runs SSE3
 * kernels (~33 GFLOP/s sgemm per core) although the CPU has AVX2/FMA/AVX-512F (SkylakeX kernel
 * ~160 GFLOP/s). The kernel can only be chosen through OPENBLAS_CORETYPE, which the library reads
 * when it is loaded, before main() runs. Hence the process re-executes itself once with the
 * variable set.
 *
 * Start-up sequence for a program (main.c):
 *
 *     ac_blas_maybe_reexec(argc, argv);          // first thing: may not return
 *     if (ac_blas_selfcheck(&err) != 0) {        // wrong results from the chosen kernel?
 *         ac_blas_fallback_reexec(argv, &err);   // re-exec with the default kernel; returns only
 *         ...report err, exit non-zero...        // when there is nothing to fall back to
 *     }
 *
 * Environment variables:
 *   OPENBLAS_CORETYPE    set by the user: respected, never overridden, no re-exec.
 *   AGENTCORE_NO_REEXEC  set (any value): never re-exec (tests, debuggers, the fallback itself).
 *   AGENTCORE_BLAS_AUTO  set by ac_blas_maybe_reexec to the kernel it chose, so that the child
 *                        knows the kernel was chosen automatically and may be given up. */
#ifndef AC_BLAS_H
#define AC_BLAS_H

#include "base/err.h"

/* The OpenBLAS core type this CPU should use according to CPUID (with OS support for the
 * registers): "SkylakeX" with AVX-512F, "Haswell" with AVX2 and FMA, NULL otherwise (keep the
 * library's own choice). */
const char *ac_blas_cpu_coretype(void);

/* When neither OPENBLAS_CORETYPE nor AGENTCORE_NO_REEXEC is set and ac_blas_cpu_coretype() names
 * a kernel: sets OPENBLAS_CORETYPE and AGENTCORE_BLAS_AUTO to it and re-executes /proc/self/exe
 * with the same argv (argv[argc] must be NULL). Does not return then.
 * Returns 0 when nothing had to be done, -1 when exec failed (the variables are removed again and
 * the process goes on with the default kernel: slower, still correct). */
int ac_blas_maybe_reexec(int argc, char **argv);

/* Multiplies odd shapes (333x1029 . 1029x257, row-major, with alpha/beta and a transposed
 * operand) with cblas_sgemm and compares against a naive double-precision product.
 * Returns 0 when the max relative error (|c - ref| / (|A||B| row-col norm bound)) is below 1e-4;
 * -1 with AC_ERR_INTERNAL naming the kernel and the error otherwise, or on allocation failure.
 * Takes ~40 ms (the double reference dominates). */
int ac_blas_selfcheck(ac_err_t *err);

/* After a failed self-check: if the running kernel was chosen by ac_blas_maybe_reexec
 * (AGENTCORE_BLAS_AUTO set), removes OPENBLAS_CORETYPE and AGENTCORE_BLAS_AUTO, sets
 * AGENTCORE_NO_REEXEC=1 and re-executes with the library's default kernel (does not return).
 * Returns -1 with AC_ERR_INTERNAL when there is nothing to fall back to (the user chose the
 * kernel, or it already is the default) or exec failed: the caller must then stop. */
int ac_blas_fallback_reexec(char **argv, ac_err_t *err);

/* The kernel OpenBLAS runs ("Prescott", "Haswell", "SkylakeX", ...); static storage. */
const char *ac_blas_kernel(void);

/* Threads OpenBLAS may use per call (n >= 1). Two workers calling sgemm at once do best with 1
 * each. Process-wide. */
void ac_blas_set_threads(int n);

#endif
