/* Declarative JSON-RPC parameters: what a method table says about each parameter (type,
 * required, default, range, choices), the one check rpc.c runs before a handler, and the JSON
 * Schema discovery publishes for it. Errors are values (ac_err_t); rpc.c renders them. */
#ifndef AC_PARAMS_H
#define AC_PARAMS_H

#include "base/err.h"

typedef enum ac_param_type {
    AC_P_STRING = 1,
    AC_P_UUID,    /* a string in UUID form (-32602 otherwise) */
    AC_P_INTEGER, /* a JSON integer, or a real with an integral value below 2^53 */
    AC_P_NUMBER,
    AC_P_BOOL,
    AC_P_OBJECT,
    AC_P_ARRAY,
    AC_P_STRING_OR_ARRAY, /* either; the handler checks which strings it takes ("*" for events) */
} ac_param_type_t;

/* What a parameter declares besides its type (ac_param_spec_t.checks). */
enum {
    AC_PARAM_MIN = 1,     /* a number at least min; an array of at least min items */
    AC_PARAM_MAX = 2,     /* a number at most max; an array of at most max items */
    AC_PARAM_DEFAULT = 4, /* absent (or null): the handler sees def (integer, number or boolean) */
};

/* One parameter of a method, declared in its method table. ac_params_check runs, per declared
 * parameter in table order: required, type, then choices and range; then it refuses names the
 * table does not declare. The handler then reads params that passed: every declared default
 * filled in, an optional parameter given as null removed (null means absent), and an
 * AC_P_INTEGER given as an integral real (2.0) replaced by the integer. Every refusal is the
 * method's code (over_code above max, when set) with data {"field": name, "error": what}.
 * The fields after doc are named where used: {"url", AC_P_STRING, 1, "doc", .checks = 0} declares
 * nothing beyond the type, and a table ends with AC_PARAMS_END. */
typedef struct ac_param_spec {
    const char *name;
    ac_param_type_t type;
    int required;
    const char *doc;            /* one line, for discovery */
    int checks;                 /* AC_PARAM_* bits */
    double min, max;            /* inclusive bounds (AC_PARAM_MIN, AC_PARAM_MAX) */
    double def;                 /* AC_PARAM_DEFAULT: the value (booleans: 0 or 1) */
    const char *const *choices; /* AC_P_STRING: the values allowed, NULL-terminated (NULL: any) */
    int over_code;              /* the code for a value above max, where the API names one (else 0) */
} ac_param_spec_t;

/* The end of a parameter table (named, so that no compiler finds a field left out). */
#define AC_PARAMS_END {.name = NULL}

/* Checks params (an object; the caller refuses anything else) against specs (terminated by
 * AC_PARAMS_END; NULL: no parameters) of method `method` (named in the unknown-parameter message) and
 * normalises it as described above. Returns 0, or -1 with err = code (or a spec's over_code)
 * naming the field. */
int ac_params_check(const ac_param_spec_t *specs, const char *method, int code, json_t *params, ac_err_t *err);

/* Checks a declaration: a range only on integers, numbers and arrays, min <= max, a default
 * only on an optional integer, number or boolean and within the range, choices only on strings.
 * Returns 0, or -1 with err (AC_ERR_INTERNAL) naming the parameter. */
int ac_params_check_spec(const ac_param_spec_t *spec, ac_err_t *err);

/* The parameter's JSON Schema: {"type", "format"?, "minimum"/"maximum" (or minItems/maxItems),
 * "default", "enum"}. New reference. */
json_t *ac_params_schema(const ac_param_spec_t *spec);

#endif
