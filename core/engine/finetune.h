/* Fine-tuning datasets from trajectories: an episode as a chat transcript with tool calls, in
 * the shape OpenAI's chat fine-tuning takes (one JSON object per line) and TRL's SFTTrainer
 * reads (a "messages" column and a "tools" column):
 *
 *   {"messages": [
 *      {"role": "system", "content": <the agent's description>},
 *      {"role": "user", "content": <the query>},
 *      {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
 *                                            "function": {"name": "add", "arguments": "{\"a\":7,\"b\":5}"}}]},
 *      {"role": "tool", "tool_call_id": "call_1", "content": "{\"value\":12}"},
 *      ...,
 *      {"role": "assistant", "content": <agent.final's answer as JSON text>}],
 *    "tools": [{"type": "function", "function": {"name", "description", "parameters": <JSON Schema>}}]}
 *
 * docs/api.md ("Fine-tuning datasets") documents the shape and how the arguments' types follow
 * the tools' declarations. */
#ifndef AC_FINETUNE_H
#define AC_FINETUNE_H

#include <jansson.h>

#include "engine/infer.h"

/* The agent's tools as function declarations: [{"type": "function", "function": {"name",
 * "description", "parameters": {"type": "object", "properties", "required",
 * "additionalProperties": false}}}]. New reference. */
json_t *ac_chat_tools(const ac_agent_decl_t *d);

/* One trajectory in the export format ({query, steps: [{action: {tool, params}, result}], final})
 * as {"messages", "tools"}; tools (borrowed) is ac_chat_tools' array. New reference, NULL on
 * memory. */
json_t *ac_chat_record(const json_t *traj, const ac_agent_decl_t *d, json_t *tools);

#endif
