/* Fault injection for tests, in the manner of SQLite's sqlite3FaultSim: named points in
 * production code that fail on purpose when the environment variable AGENTCORE_FAULT lists
 * them (comma-separated), so that tests can drive error paths a healthy system never takes.
 * Points: "store.write" (every write transaction fails). */
#ifndef AC_FAULT_H
#define AC_FAULT_H

/* 1 when the point is enabled. The variable is read once, at the first call. */
int ac_fault(const char *point);

#endif
