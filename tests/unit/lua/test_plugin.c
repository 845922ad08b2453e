/* The webhook-policy header rule (ac_webhook_header_check): what a policy may add to a delivery. */
#include <string.h>

#include "check.h"
#include "lua/plugin.h"

static int ok(const char *name, const char *value)
{
    return ac_webhook_header_check(name, strlen(name), value, strlen(value), NULL) == 0;
}

/* refused, with a message naming the header (and containing `why`) */
static int refused(const char *name, size_t nlen, const char *value, size_t vlen, const char *why)
{
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_webhook_header_check(name, nlen, value, vlen, &err);
    int good = rc == -1 && err.code == AC_ERR_INTERNAL && strstr(err.message, why) != NULL;
    if (!good)
        fprintf(stderr, "  %s: rc %d, '%s'\n", name, rc, err.message);
    ac_err_clear(&err);
    return good;
}
#define REFUSED(name, value, why) refused(name, strlen(name), value, strlen(value), why)

int main(void)
{
    CHECK(ok("x-policy", "yes") && ok("X-Trace_Id.1", "a\tb") && ok("x", "") && ok("Authorization", "Bearer t") &&
              ok("!#$%&'*+-.^_`|~", "v") && ok("x-utf8", "\xc3\xa9t\xc3\xa9"),
          "tokens with printable values (tab, UTF-8, empty) pass");
    const char *owned[] = {"Host", "content-length", "Transfer-Encoding", "CONNECTION", "keep-alive", "TE",
                           "Trailer", "upgrade", "Expect", "Content-Type", "webhook-id", "Webhook-Timestamp",
                           "webhook-signature", "Proxy-Authorization", "proxy-connection", "Proxy-X", NULL};
    int all = 1;
    for (const char **h = owned; *h; h++) {
        char why[160];
        snprintf(why, sizeof why, "header '%s' may not be set by a policy", *h);
        all &= REFUSED(*h, "x", why);
    }
    CHECK(all, "framing, hop-by-hop, Host, Content-Type, Proxy-* and signature headers are refused, any case");
    CHECK(ok("hosts", "x") && ok("x-host", "x") && ok("te2", "x") && ok("proxy", "x"),
          "only those names: look-alikes pass");
    CHECK(REFUSED("bad name", "x", "'bad name' is not an HTTP token") && REFUSED("x:y", "x", "not an HTTP token") &&
              REFUSED("x\r\nInjected", "x", "not an HTTP token") && REFUSED("\xc3\xa9", "x", "not an HTTP token") &&
              REFUSED("", "x", "1 to 128"),
          "names that are not tokens are refused");
    CHECK(refused("x\0y", 3, "v", 1, "not an HTTP token"), "a NUL inside the name is refused");
    CHECK(REFUSED("x-a", "a\r\nInjected: 1", "control character (0x0d)") && REFUSED("x-a", "a\nb", "(0x0a)") &&
              refused("x-a", 3, "a\0b", 3, "(0x00)") && REFUSED("x-a", "a\x7f", "(0x7f)") &&
              REFUSED("x-a", "a\x01", "(0x01)"),
          "values with CR, LF, NUL or other controls are refused");
    char big[AC_WEBHOOK_MAX_HEADER_VALUE + 2];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(REFUSED("x-big", big, "longer than 4096") && ok("x-big", big + 1), "values up to 4096 bytes");
    char name[AC_WEBHOOK_MAX_HEADER_NAME + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    CHECK(REFUSED(name, "x", "1 to 128") && ok(name + 1, "x"), "names up to 128 bytes");
    return check_done(__FILE__);
}
