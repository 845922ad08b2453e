/* The configuration reference: every key of the GRPO config (base/train_config.h), the server
 * config (lua/config.h) and the experiment file (engine/experiment.h), with its type, default,
 * range and meaning, taken from the field tables the readers use. `agentcore config --reference`
 * prints it; docs/configuration.md embeds that output and a test keeps the two equal. */
#ifndef AC_REFERENCE_H
#define AC_REFERENCE_H

#include <jansson.h>

/* {"grpo": [...], "server": [...], "experiment": [...]}, each a list of sections in the shape of
 * ac_config_reference (lua/config.h). New reference. */
json_t *ac_reference_json(void);

/* The same as markdown: one heading per part, one table per section. Returns a malloc'd string
 * (the caller frees it), or NULL when memory runs out. */
char *ac_reference_markdown(void);

#endif
