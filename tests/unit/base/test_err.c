/* Errors as values: field errors, and the path stripping that keeps server paths out of what
 * clients read (-32603 answers, webhooks.list's last_policy_error). */
#include <string.h>

#include "check.h"
#include "base/err.h"

static int stripped(const char *in, const char *want)
{
    char out[256];
    ac_err_strip_paths(out, sizeof out, in);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "  got '%s', want '%s'\n", out, want);
    return strcmp(out, want) == 0;
}

int main(void)
{
    CHECK(stripped("/srv/agentcore/plugins/validators/x.lua:12: boom", "x.lua:12: boom"), "absolute path");
    CHECK(stripped("plugins/validators/x.lua:12: attempt to index a nil value (local 'q')",
                   "x.lua:12: attempt to index a nil value (local 'q')"), "relative path, quotes kept");
    CHECK(stripped("x.lua:3: first line\nstack traceback:\n\tplugins/x.lua:3: in function", "x.lua:3: first line"),
          "only the first line");
    CHECK(stripped("[string \"plugins/agents/a.lua\"]:4: bad", "[string \"a.lua\"]:4: bad"), "chunk name");
    CHECK(stripped("url must be an http:// or https:// URL, not ftp://example.com/x",
                   "url must be an http:// or https:// URL, not ftp://example.com/x"), "URLs are kept");
    CHECK(stripped("store: mdb_put: MDB_MAP_FULL", "store: mdb_put: MDB_MAP_FULL"), "no path: unchanged");
    CHECK(stripped("cannot open /var/lib/ac/data/lock.mdb (No such file)", "cannot open lock.mdb (No such file)"),
          "a path inside the text");
    CHECK(stripped("", ""), "empty");
    char small[8];
    ac_err_strip_paths(small, sizeof small, "/a/b/abcdefghijkl");
    CHECK(strcmp(small, "abcdefg") == 0, "cut to the buffer, terminated");
    ac_err_strip_paths(small, 1, "abc");
    CHECK(small[0] == '\0', "a one-byte buffer holds the terminator");

    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_err_field(&err, AC_ERR_INVALID_PARAMS, "url", "holds %s", "a space") == -1, "field error returns -1");
    CHECK(strcmp(err.message, "Invalid params") == 0 &&
              strcmp(json_string_value(json_object_get(err.data, "field")), "url") == 0 &&
              strcmp(json_string_value(json_object_get(err.data, "error")), "holds a space") == 0,
          "field error: the code's name, data {field, error}");
    ac_err_set(&err, AC_ERR_INTERNAL, "line\r\nInjected: 1");
    CHECK(strchr(err.message, '\r') == NULL && strchr(err.message, '\n') == NULL && err.data == NULL,
          "messages lose control characters; set drops data");
    ac_err_clear(&err);
    return check_done(__FILE__);
}
