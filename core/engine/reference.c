#include "engine/reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/train_config.h"
#include "engine/experiment.h"
#include "lua/config.h"

/* Numbers as people write them: integers whole, fractions without an exponent (0.00001). */
static void fmt_number(char *buf, size_t len, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f", v);
        return;
    }
    snprintf(buf, len, "%.10f", v);
    char *end = buf + strlen(buf) - 1;
    while (end > buf && *end == '0')
        *end-- = '\0';
}

/* The GRPO config's rows, from ac_train_config_fields. */
static json_t *grpo_reference(void)
{
    static const char *const type_names[] = {"integer", "number", "boolean", "string"};
    json_t *rows = json_array();
    for (const ac_config_field_t *f = ac_train_config_fields; f->name; f++) {
        char range[160] = "", lo[32], hi[32];
        json_t *def = NULL;
        fmt_number(lo, sizeof lo, f->min);
        fmt_number(hi, sizeof hi, f->max);
        switch (f->type) {
        case AC_F_INT: def = json_integer((json_int_t)f->def); break;
        case AC_F_NUMBER: def = json_real(f->def); break;
        case AC_F_BOOL: def = json_boolean(f->def != 0); break;
        case AC_F_ENUM: def = json_string(f->choices[(int)f->def]); break;
        }
        if (f->type == AC_F_INT || f->type == AC_F_NUMBER) {
            /* as ac_train_config_from_json words it: no upper bound worth naming past 1e9 */
            if (f->max >= 1e9)
                snprintf(range, sizeof range, "at least %s", lo);
            else
                snprintf(range, sizeof range, "%s to %s", lo, hi);
        }
        for (int i = 0; f->type == AC_F_ENUM && f->choices[i]; i++)
            snprintf(range + strlen(range), sizeof range - strlen(range), "%s\"%s\"", i ? ", " : "", f->choices[i]);
        json_t *row = json_pack("{s:s, s:s, s:o, s:s, s:s}", "key", f->name, "type", type_names[f->type], "default",
                                def, "range", range, "doc", f->doc);
        if (f->type == AC_F_INT || f->type == AC_F_NUMBER) {
            json_object_set_new(row, "min", f->type == AC_F_INT ? json_integer((json_int_t)f->min) : json_real(f->min));
            json_object_set_new(row, "max", f->type == AC_F_INT ? json_integer((json_int_t)f->max) : json_real(f->max));
        }
        json_array_append_new(rows, row);
    }
    return json_pack("[{s:s, s:s, s:o}]", "section", "", "doc",
                     "The `config` object of `training.start_grpo`, and the `config` table of an experiment file "
                     "(and of each of its `sweep` runs). An unknown key, a wrong type or a value out of range is "
                     "refused (by start_grpo with -32600 and `data.field`; by `agentcore train` naming "
                     "`config.<key>`). docs/grpo.md says what each key does to the maths.",
                     "keys", rows);
}

json_t *ac_reference_json(void)
{
    return json_pack("{s:o, s:o, s:o}", "grpo", grpo_reference(), "server", ac_config_reference(), "experiment",
                     ac_experiment_reference());
}

/* A value as a config file writes it: "text", 12, 0.5, true, { 0, 5 }, {}. */
static void put_literal(FILE *out, const json_t *v)
{
    char num[64];
    size_t i;
    const json_t *item;
    switch (json_typeof(v)) {
    case JSON_STRING: fprintf(out, "\"%s\"", json_string_value(v)); break;
    case JSON_INTEGER: fprintf(out, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL:
        fmt_number(num, sizeof num, json_real_value(v));
        fputs(num, out);
        break;
    case JSON_TRUE: fputs("true", out); break;
    case JSON_FALSE: fputs("false", out); break;
    case JSON_ARRAY:
        if (json_array_size(v) == 0) {
            fputs("{}", out);
            break;
        }
        fputs("{ ", out);
        json_array_foreach(v, i, item)
        {
            fputs(i ? ", " : "", out);
            put_literal(out, item);
        }
        fputs(" }", out);
        break;
    case JSON_OBJECT: fputs(json_object_size(v) ? "{ ... }" : "{}", out); break;
    case JSON_NULL: fputs("nil", out); break;
    }
}

/* Table cells hold no "|" and no line break. */
static void put_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s == '\n' ? ' ' : *s, out);
    }
}

static void put_default(FILE *out, const json_t *row)
{
    const json_t *doc = json_object_get(row, "default_doc"), *v = json_object_get(row, "default");
    const char *key = json_string_value(json_object_get(row, "key"));
    if (json_is_string(doc)) {
        put_cell(out, json_string_value(doc));
        return;
    }
    if (v == NULL || json_is_null(v)) {
        fputs("none", out);
        return;
    }
    fputc('`', out);
    put_literal(out, v);
    fputc('`', out);
    /* byte counts also in KiB / MiB / GiB, as they are usually meant */
    size_t klen = strlen(key);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : 0;
    if (klen > 6 && strcmp(key + klen - 6, "_bytes") == 0 && n >= 1024 && n % 1024 == 0) {
        static const char *const units[] = {"KiB", "MiB", "GiB"};
        int u = 0;
        for (n /= 1024; u < 2 && n >= 1024 && n % 1024 == 0; u++)
            n /= 1024;
        fprintf(out, " (%lld %s)", n, units[u]);
    }
}

static void put_section(FILE *out, const json_t *sec, const char *level)
{
    const char *name = json_string_value(json_object_get(sec, "section"));
    if (level != NULL) {
        if (name[0])
            fprintf(out, "%s `%s`\n\n", level, name);
        else
            fprintf(out, "%s Top level\n\n", level);
    }
    fprintf(out, "%s\n\n| key | type | default | range | meaning |\n|---|---|---|---|---|\n",
            json_string_value(json_object_get(sec, "doc")));
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(sec, "keys"), i, row)
    {
        fprintf(out, "| `%s` | ", json_string_value(json_object_get(row, "key")));
        put_cell(out, json_string_value(json_object_get(row, "type")));
        fputs(" | ", out);
        put_default(out, row);
        fputs(" | ", out);
        put_cell(out, json_string_value(json_object_get(row, "range")));
        fputs(" | ", out);
        put_cell(out, json_string_value(json_object_get(row, "doc")));
        fputs(" |\n", out);
    }
    fputc('\n', out);
}

char *ac_reference_markdown(void)
{
    static const struct {
        const char *part, *title, *intro;
    } parts[] = {
        {"grpo", "GRPO config", NULL},
        {"server", "Server config",
         "`agentcore serve --config FILE` (and `token` and `train` with `--config`): a Lua file returning a "
         "table. Every key is optional; examples/server.lua writes each one with its default."},
        {"experiment", "Experiment file",
         "`agentcore train FILE`: a Lua file returning a table, run in the plugin sandbox. An unknown key, a "
         "wrong type or an integer out of range stops the run with the file's name and the key."},
    };
    json_t *ref = ac_reference_json();
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL) {
        json_decref(ref);
        return NULL;
    }
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        fprintf(out, "## %s\n\n", parts[p].title);
        if (parts[p].intro)
            fprintf(out, "%s\n\n", parts[p].intro);
        const json_t *secs = json_object_get(ref, parts[p].part), *sec;
        size_t i;
        json_array_foreach(secs, i, sec)
        {
            put_section(out, sec, json_array_size(secs) > 1 ? "###" : NULL);
        }
    }
    json_decref(ref);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    /* one newline at the end, not two */
    if (len >= 2 && text[len - 1] == '\n' && text[len - 2] == '\n')
        text[len - 1] = '\0';
    return text;
}
