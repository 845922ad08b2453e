/* training.get_status, the hot read path (clients poll it), and the cache of its answers: the
 * rendered text per job revision, so that an unchanged job costs a revision lookup and a copy.
 * The application holds one cache (ac_app_t.status). */
#ifndef AC_STATUS_H
#define AC_STATUS_H

typedef struct ac_status_cache ac_status_cache_t;

/* NULL when out of memory. Thread-safe once made. */
ac_status_cache_t *ac_status_cache_create(void);
/* NULL is a no-op. No call may be using it. */
void ac_status_cache_destroy(ac_status_cache_t *c);

#endif
