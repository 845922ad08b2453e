/* Fine-tuning records (engine/finetune.h): an episode as a chat transcript whose texts read back
 * as the trajectory the API exports. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/finetune.h"

/* The content of message i of a record. */
static const char *content(const json_t *rec, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(rec, "messages"), i), "content"));
}

static void test_numbers_print_as_the_api_does(void)
{
    ac_agent_decl_t d = {.name = "calculator", .description = "Does arithmetic."};
    /* 4 / 17 and 0.1 as doubles: 17 digits would print 0.23529411764705882 and
     * 0.10000000000000001, where the trajectory's export (15 digits) says 0.235294117647059 and 0.1 */
    json_t *traj = json_pack("{s:s, s:[{s:{s:s, s:{s:i, s:i}}, s:{s:f}}], s:{s:f}}", "query", "Divide 4 by 17.",
                             "steps", "action", "tool", "divide", "params", "a", 4, "b", 17, "result", "value",
                             4.0 / 17.0, "final", "answer", 0.1);
    json_t *tools = json_array();
    json_t *rec = ac_chat_record(traj, &d, tools);
    CHECK(rec != NULL);
    CHECK(rec && strcmp(content(rec, 0), "Does arithmetic.") == 0);
    CHECK(rec && strcmp(content(rec, 1), "Divide 4 by 17.") == 0);
    const json_t *call = json_array_get(json_object_get(json_array_get(json_object_get(rec, "messages"), 2),
                                                        "tool_calls"), 0);
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(call, "function"), "arguments")),
                 "{\"a\":4,\"b\":17}") == 0);
    CHECK(rec && strcmp(content(rec, 3), "{\"value\":0.235294117647059}") == 0, "a tool result as the export prints it");
    CHECK(rec && strcmp(content(rec, 4), "{\"answer\":0.1}") == 0, "the answer as the export prints it");
    json_decref(rec);
    json_decref(tools);
    json_decref(traj);
}

int main(void)
{
    test_numbers_print_as_the_api_does();
    return check_done("test_finetune");
}
