/* Errors as values: every fallible function returns 0 / -1 and fills an ac_err_t passed last.
 * Only rpc.c turns an ac_err_t into a JSON-RPC error object. */
#ifndef AC_ERR_H
#define AC_ERR_H

#include <jansson.h>

enum {
    /* JSON-RPC 2.0 standard codes */
    AC_ERR_PARSE = -32700,
    AC_ERR_INVALID_REQUEST = -32600,
    AC_ERR_METHOD_NOT_FOUND = -32601,
    AC_ERR_INVALID_PARAMS = -32602,
    AC_ERR_INTERNAL = -32603,
    /* the service's own codes (README "Error codes") */
    AC_ERR_NOT_FOUND = -32001,
    AC_ERR_UNAUTHORIZED = -32002,
    AC_ERR_FORBIDDEN = -32003,
    AC_ERR_RATE_LIMITED = -32029,
    /* the training error codes of docs/api.md */
    AC_ERR_BUDGET_EXCEEDED = -40001,
    AC_ERR_VALIDATION_FAILED = -40002,
    AC_ERR_CANNOT_CANCEL = -40003,
    AC_ERR_EVALUATION_FAILED = -40004,
    AC_ERR_EXPORT_LIMIT = -40005,
};

typedef struct ac_err {
    int code;          /* one of the codes above; 0 when no error is set */
    char message[256]; /* human text, already cleaned of control characters */
    json_t *data;      /* optional JSON-RPC error data (owned; NULL when none) */
} ac_err_t;

#define AC_ERR_INIT {0, {0}, NULL}

/* Sets code and a printf-style message; drops any earlier data. Returns -1 so callers can
 * `return ac_err_set(...)`. err may be NULL (the error is then discarded). */
int ac_err_set(ac_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like ac_err_set with the code's standard message, and data {"field": field, "error": <fmt>}:
 * the shape docs/api.md documents for a bad parameter. */
int ac_err_field(ac_err_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Replaces data with `data` (the reference is stolen). */
void ac_err_set_data(ac_err_t *err, json_t *data);

/* Frees data and resets to no error. */
void ac_err_clear(ac_err_t *err);

/* Copies the first line of text into out (outlen > 0 bytes, always terminated) with each file
 * path reduced to its last component ("/srv/plugins/validators/x.lua:12: boom" becomes
 * "x.lua:12: boom"; URLs are kept): what a client may read of an internal message without
 * learning the server's layout. Returns out. */
char *ac_err_strip_paths(char *out, size_t outlen, const char *text);

/* The standard message of a code ("Invalid Request", "Not Found", ...). */
const char *ac_err_name(int code);

#endif
