#include "net/params.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/uuid.h"

/* Integers travel as doubles through the declarations; beyond 2^53 a double no longer holds
 * every integer, so integral reals are taken only below it. */
#define EXACT_DOUBLE 9007199254740992.0

static int is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return 1;
    if (!json_is_real(v))
        return 0;
    double d = json_real_value(v);
    return d == floor(d) && fabs(d) < EXACT_DOUBLE;
}

static const char *type_error(ac_param_type_t t, const json_t *v)
{
    switch (t) {
    case AC_P_STRING: return json_is_string(v) ? NULL : "must be a string";
    case AC_P_UUID:
        return json_is_string(v) && ac_uuid_valid(json_string_value(v), json_string_length(v)) ? NULL
                                                                                              : "must be a UUID";
    case AC_P_INTEGER: return is_integral(v) ? NULL : "must be an integer";
    case AC_P_NUMBER: return json_is_number(v) ? NULL : "must be a number";
    case AC_P_BOOL: return json_is_boolean(v) ? NULL : "must be a boolean";
    case AC_P_OBJECT: return json_is_object(v) ? NULL : "must be an object";
    case AC_P_ARRAY: return json_is_array(v) ? NULL : "must be an array";
    case AC_P_STRING_OR_ARRAY: return json_is_string(v) || json_is_array(v) ? NULL : "must be a string or an array";
    }
    return "has a type this server does not know";
}

/* A bound as people write it: integers without a fraction, numbers as printf's %g. */
static void bound_text(char *buf, size_t n, ac_param_type_t t, double v)
{
    if (t == AC_P_NUMBER)
        snprintf(buf, n, "%g", v);
    else
        snprintf(buf, n, "%.0f", v);
}

/* "must be between 1 and 1000", "must be at least 0", "must hold at most 16 items" */
static int range_error(const ac_param_spec_t *p, int code, int over, ac_err_t *err)
{
    char lo[40], hi[40];
    bound_text(lo, sizeof lo, p->type, p->min);
    bound_text(hi, sizeof hi, p->type, p->max);
    const char *verb = p->type == AC_P_ARRAY ? "hold" : "be";
    const char *unit = p->type == AC_P_ARRAY ? " items" : "";
    if (over && p->over_code != 0)
        code = p->over_code;
    if ((p->checks & (AC_PARAM_MIN | AC_PARAM_MAX)) == (AC_PARAM_MIN | AC_PARAM_MAX))
        return ac_err_field(err, code, p->name, "must %s between %s and %s%s", verb, lo, hi, unit);
    if (p->checks & AC_PARAM_MIN)
        return ac_err_field(err, code, p->name, "must %s at least %s%s", verb, lo, unit);
    return ac_err_field(err, code, p->name, "must %s at most %s%s", verb, hi, unit);
}

/* "must be queued, running, completed, failed or cancelled" */
static int choice_error(const ac_param_spec_t *p, int code, ac_err_t *err)
{
    char list[200] = "";
    size_t len = 0;
    for (const char *const *c = p->choices; *c != NULL && len < sizeof list; c++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", c == p->choices ? "" : c[1] ? ", " : " or ",
                                *c);
    return ac_err_field(err, code, p->name, "must be %s", list);
}

/* Choices and range of a value of the right type. */
static int check_value(const ac_param_spec_t *p, const json_t *v, int code, ac_err_t *err)
{
    if (p->choices != NULL && json_is_string(v)) {
        const char *s = json_string_value(v);
        const char *const *c = p->choices;
        while (*c != NULL && strcmp(*c, s) != 0)
            c++;
        if (*c == NULL)
            return choice_error(p, code, err);
    }
    if (!(p->checks & (AC_PARAM_MIN | AC_PARAM_MAX)))
        return 0;
    double x;
    if (json_is_array(v))
        x = (double)json_array_size(v);
    else if (json_is_integer(v)) /* compared as a double: exact for the bounds a table writes */
        x = (double)json_integer_value(v);
    else if (json_is_number(v))
        x = json_number_value(v);
    else
        return 0;
    if ((p->checks & AC_PARAM_MIN) && !(x >= p->min))
        return range_error(p, code, 0, err);
    if ((p->checks & AC_PARAM_MAX) && !(x <= p->max))
        return range_error(p, code, 1, err);
    return 0;
}

static json_t *default_value(const ac_param_spec_t *p)
{
    switch (p->type) {
    case AC_P_INTEGER: return json_integer((json_int_t)p->def);
    case AC_P_BOOL: return json_boolean(p->def != 0);
    default: return json_real(p->def);
    }
}

/* One declared parameter: required, default, type, choices, range; normalises params. */
static int check_one(const ac_param_spec_t *p, int code, json_t *params, ac_err_t *err)
{
    json_t *v = json_object_get(params, p->name);
    if (v == NULL || json_is_null(v)) {
        if (p->required)
            return ac_err_field(err, code, p->name, "is required");
        if (p->checks & AC_PARAM_DEFAULT)
            json_object_set_new(params, p->name, default_value(p));
        else if (v != NULL)
            json_object_del(params, p->name); /* null means absent */
        return 0;
    }
    const char *wrong = type_error(p->type, v);
    if (wrong != NULL)
        return ac_err_field(err, code, p->name, "%s", wrong);
    if (check_value(p, v, code, err) != 0)
        return -1;
    if (p->type == AC_P_INTEGER && json_is_real(v)) /* 2.0: the handler reads an integer */
        json_object_set_new(params, p->name, json_integer((json_int_t)json_real_value(v)));
    return 0;
}

int ac_params_check(const ac_param_spec_t *specs, const char *method, int code, json_t *params, ac_err_t *err)
{
    for (const ac_param_spec_t *p = specs; p != NULL && p->name != NULL; p++)
        if (check_one(p, code, params, err) != 0)
            return -1;
    /* unknown names are refused so that a typo is not silently ignored */
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        const ac_param_spec_t *p = specs;
        while (p != NULL && p->name != NULL && strcmp(p->name, key) != 0)
            p++;
        if (p == NULL || p->name == NULL)
            return ac_err_field(err, code, key, "is not a parameter of %s", method);
    }
    return 0;
}

int ac_params_check_spec(const ac_param_spec_t *p, ac_err_t *err)
{
    int ranged = p->checks & (AC_PARAM_MIN | AC_PARAM_MAX);
    int numeric = p->type == AC_P_INTEGER || p->type == AC_P_NUMBER;
    const char *why = NULL;
    if (p->type < AC_P_STRING || p->type > AC_P_STRING_OR_ARRAY)
        why = "an unknown type";
    else if (ranged && !numeric && p->type != AC_P_ARRAY)
        why = "a range on a type without one";
    else if ((p->checks & (AC_PARAM_MIN | AC_PARAM_MAX)) == (AC_PARAM_MIN | AC_PARAM_MAX) && !(p->min <= p->max))
        why = "min above max";
    else if ((p->checks & AC_PARAM_DEFAULT) && (p->required || !(numeric || p->type == AC_P_BOOL)))
        why = "a default on a required parameter, or on a type that takes none";
    else if ((p->checks & AC_PARAM_DEFAULT) && (((p->checks & AC_PARAM_MIN) && p->def < p->min) ||
                                                ((p->checks & AC_PARAM_MAX) && p->def > p->max)))
        why = "a default outside its range";
    else if (p->choices != NULL && (p->type != AC_P_STRING || p->choices[0] == NULL))
        why = "choices on a type other than string, or no choice";
    else if (p->over_code != 0 && !(p->checks & AC_PARAM_MAX))
        why = "an over_code without a maximum";
    if (why == NULL)
        return 0;
    return ac_err_field(err, AC_ERR_INTERNAL, p->name, "parameter %s declares %s", p->name, why);
}

static json_t *type_schema(ac_param_type_t t)
{
    switch (t) {
    case AC_P_STRING: return json_pack("{s:s}", "type", "string");
    case AC_P_UUID: return json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
    case AC_P_INTEGER: return json_pack("{s:s}", "type", "integer");
    case AC_P_NUMBER: return json_pack("{s:s}", "type", "number");
    case AC_P_BOOL: return json_pack("{s:s}", "type", "boolean");
    case AC_P_OBJECT: return json_pack("{s:s}", "type", "object");
    case AC_P_ARRAY: return json_pack("{s:s}", "type", "array");
    case AC_P_STRING_OR_ARRAY: return json_pack("{s:[s, s]}", "type", "string", "array");
    }
    return json_object();
}

static json_t *bound_json(ac_param_type_t t, double v)
{
    return t == AC_P_NUMBER ? json_real(v) : json_integer((json_int_t)v);
}

json_t *ac_params_schema(const ac_param_spec_t *p)
{
    json_t *s = type_schema(p->type);
    int items = p->type == AC_P_ARRAY;
    if (p->checks & AC_PARAM_MIN)
        json_object_set_new(s, items ? "minItems" : "minimum", bound_json(items ? AC_P_INTEGER : p->type, p->min));
    if (p->checks & AC_PARAM_MAX)
        json_object_set_new(s, items ? "maxItems" : "maximum", bound_json(items ? AC_P_INTEGER : p->type, p->max));
    if (p->checks & AC_PARAM_DEFAULT)
        json_object_set_new(s, "default", default_value(p));
    if (p->choices != NULL) {
        json_t *e = json_array();
        for (const char *const *c = p->choices; *c != NULL; c++)
            json_array_append_new(e, json_string(*c));
        json_object_set_new(s, "enum", e);
    }
    return s;
}
