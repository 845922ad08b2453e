#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ac_err_name(int code)
{
    switch (code) {
    case AC_ERR_PARSE: return "Parse error";
    case AC_ERR_INVALID_REQUEST: return "Invalid Request";
    case AC_ERR_METHOD_NOT_FOUND: return "Method not found";
    case AC_ERR_INVALID_PARAMS: return "Invalid params";
    case AC_ERR_INTERNAL: return "Internal error";
    case AC_ERR_NOT_FOUND: return "Not found";
    case AC_ERR_UNAUTHORIZED: return "Unauthorized";
    case AC_ERR_FORBIDDEN: return "Forbidden";
    case AC_ERR_RATE_LIMITED: return "Rate limit exceeded";
    case AC_ERR_BUDGET_EXCEEDED: return "Budget exceeded";
    case AC_ERR_VALIDATION_FAILED: return "Validation failed";
    case AC_ERR_CANNOT_CANCEL: return "Cannot cancel";
    case AC_ERR_EVALUATION_FAILED: return "Evaluation failed";
    case AC_ERR_EXPORT_LIMIT: return "Export limit exceeded";
    default: return "Error";
    }
}

/* Messages may carry user text (a field name, a plugin's error): keep them printable so that
 * they cannot break a log line or a header. */
static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

int ac_err_set(ac_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    ac_err_clear(err);
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    clean(err->message);
    return -1;
}

int ac_err_field(ac_err_t *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ac_err_set(err, code, "%s", ac_err_name(code));
    err->data = json_pack("{s:s, s:s}", "field", field, "error", text);
    if (err->data == NULL) {
        /* user text cut inside a UTF-8 character (or not UTF-8 at all): keep the ASCII */
        for (char *p = text; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        char f[256];
        snprintf(f, sizeof f, "%s", field);
        for (char *p = f; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        err->data = json_pack("{s:s, s:s}", "field", f, "error", text);
    }
    return -1;
}

void ac_err_set_data(ac_err_t *err, json_t *data)
{
    if (err == NULL) {
        json_decref(data);
        return;
    }
    json_decref(err->data);
    err->data = data;
}

void ac_err_clear(ac_err_t *err)
{
    if (err == NULL)
        return;
    json_decref(err->data);
    err->data = NULL;
    err->code = 0;
    err->message[0] = '\0';
}

char *ac_err_strip_paths(char *out, size_t outlen, const char *text)
{
    /* a "word" ends at blanks, quotes and brackets: Lua writes chunk names as [string "..."] */
    static const char stops[] = " \t\n\"'()[]<>,;=";
    size_t o = 0;
    const char *end = text + strcspn(text, "\n");
    for (const char *p = text; p < end && o + 1 < outlen;) {
        size_t n = strcspn(p, stops);
        if (p + n > end)
            n = (size_t)(end - p);
        if (n == 0) { /* a separator */
            out[o++] = *p++;
            continue;
        }
        const char *keep = p, *slash = NULL;
        int url = 0;
        for (const char *q = p; q < p + n; q++) {
            if (*q == '/')
                slash = q;
            url |= q + 2 < p + n && q[0] == ':' && q[1] == '/' && q[2] == '/';
        }
        if (slash != NULL && !url) /* a path: keep its last component */
            keep = slash + 1;
        size_t k = (size_t)(p + n - keep), room = outlen - 1 - o;
        if (k > room)
            k = room;
        memcpy(out + o, keep, k);
        o += k;
        p += n;
    }
    out[o] = '\0';
    return out;
}
