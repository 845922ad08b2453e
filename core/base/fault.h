/* Fault injection for tests, in the manner of SQLite's sqlite3FaultSim: named points in
 * production code that fail on purpose when the environment variable AGENTCORE_FAULT lists
 * them (comma-separated), so that tests can drive error paths a healthy system never takes.
 * Points:
 *   "store.write"    every write transaction fails before it starts;
 *   "store.commit"   every commit fails as a full disk makes it fail (ENOSPC), after the
 *                    transaction ran: nothing of it is kept;
 *   "store.reserved" the writes that record a failure (ac_store_write_reserved) fail likewise,
 *                    without touching the reserve: the in-memory fallback of jobs.h. */
#ifndef AC_FAULT_H
#define AC_FAULT_H

/* 1 when the point is enabled. The variable is read once, at the first call (or replaced by
 * ac_fault_set). Thread-safe. */
int ac_fault(const char *point);

/* Replaces the list of enabled points (NULL or "" for none; at most 255 characters), for tests
 * that switch a fault on and off while the code under test runs. Thread-safe. */
void ac_fault_set(const char *points);

#endif
