#include "engine/finetune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JSON Schema of an argument: what ac_context_value gives for its kind. */
static json_t *arg_schema(int kind)
{
    switch (kind) {
    case AC_ARG_NUMBER:
        return json_pack("{s:s, s:s}", "type", "number", "description", "a number seen in the conversation");
    case AC_ARG_WORD:
        return json_pack("{s:s, s:s}", "type", "string", "description", "a word seen in the conversation");
    case AC_ARG_ID:
        return json_pack("{s:s, s:s}", "type", "string", "description",
                         "an identifier or number seen in the conversation, as text");
    case AC_ARG_ANY:
        return json_pack("{s:s, s:s}", "type", "string", "description", "a word, number or identifier seen in "
                                                                        "the conversation, as text");
    default: /* AC_ARG_CANDIDATE: one of the values the agent offered */
        return json_pack("{s:[s, s], s:s}", "type", "string", "number", "description",
                         "one of the candidates the agent offers");
    }
}

json_t *ac_chat_tools(const ac_agent_decl_t *d)
{
    json_t *tools = json_array();
    for (int i = 0; tools != NULL && i < d->n_tools; i++) {
        const ac_tool_t *t = &d->tools[i];
        json_t *props = json_object(), *req = json_array();
        for (int k = 0; k < t->n_args; k++) {
            json_object_set_new(props, t->args[k].name, arg_schema(t->args[k].kind));
            json_array_append_new(req, json_string(t->args[k].name));
        }
        json_array_append_new(tools, json_pack("{s:s, s:{s:s, s:s, s:{s:s, s:o, s:o, s:b}}}", "type", "function",
                                               "function", "name", t->name, "description",
                                               t->description ? t->description : t->name, "parameters", "type",
                                               "object", "properties", props, "required", req,
                                               "additionalProperties", 0));
    }
    return tools;
}

/* A value as compact JSON text, numbers to 15 significant digits as every API answer prints them
 * (net/rpc.c): a message's text then reads back as the trajectory it came from does. */
static json_t *json_text(const json_t *v)
{
    char *s = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_t *out = s ? json_string(s) : NULL;
    free(s);
    return out;
}

/* A value as the text a message carries: strings as they are, anything else as JSON text. */
static json_t *as_text(const json_t *v)
{
    return json_is_string(v) ? json_incref((json_t *)v) : json_text(v);
}

json_t *ac_chat_record(const json_t *traj, const ac_agent_decl_t *d, json_t *tools)
{
    char system[600];
    if (d->description != NULL)
        snprintf(system, sizeof system, "%s", d->description);
    else
        snprintf(system, sizeof system, "You are the %s agent: call its tools to answer the user.", d->name);
    json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:o}]", "role", "system", "content", system, "role", "user",
                             "content", as_text(json_object_get(traj, "query")));
    size_t i;
    json_t *step;
    char id[32];
    json_array_foreach(json_object_get(traj, "steps"), i, step)
    {
        json_t *action = json_object_get(step, "action");
        json_t *params = json_object_get(action, "params");
        snprintf(id, sizeof id, "call_%zu", i + 1);
        json_t *args = json_text(json_is_object(params) ? params : NULL);
        json_array_append_new(msgs, json_pack("{s:s, s:[{s:s, s:s, s:{s:O, s:o}}]}", "role", "assistant",
                                              "tool_calls", "id", id, "type", "function", "function", "name",
                                              json_object_get(action, "tool"), "arguments",
                                              args ? args : json_string("{}")));
        json_array_append_new(msgs, json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id", id, "content",
                                              json_text(json_object_get(step, "result"))));
    }
    json_t *final = json_object_get(traj, "final");
    if (final != NULL && !json_is_null(final))
        json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", "assistant", "content", json_text(final)));
    return msgs ? json_pack("{s:o, s:O}", "messages", msgs, "tools", tools) : NULL;
}
