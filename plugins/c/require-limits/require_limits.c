/* kpo validating policy in C (contract kpo:plugin@0.2.0, world configured-validator-plugin):
 * refuses a pod with a container that lacks a resource limit the organisation requires — memory
 * by default, or those its config names:
 *
 *   [[policy]]
 *   path = "plugins/target/c/require_limits.wasm"
 *   config = { limits = ["memory", "cpu"] }
 *
 * JSON is read with jsmn (Debian's libjsmn-dev), a tokenizer in one header: tokens point into
 * the text, nothing is copied. Built with `make`; see README.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#include "jsmn.h"
#include "configured_validator_plugin.h"

typedef configured_validator_plugin_string_t string_t;

/* A document: its text and tokens (token 0 is the whole value). */
typedef struct {
  const char *text;
  jsmntok_t *tok;
  int count;
} doc_t;

static bool parse(doc_t *d, const char *text, size_t len) {
  jsmn_parser p;
  jsmn_init(&p);
  int n = jsmn_parse(&p, text, len, NULL, 0);
  d->text = text;
  d->count = 0;
  d->tok = n > 0 ? calloc((size_t)n, sizeof(jsmntok_t)) : NULL;
  if (n <= 0) return false;
  jsmn_init(&p);
  d->count = jsmn_parse(&p, text, len, d->tok, (unsigned)n);
  return d->count > 0;
}

/* The token after token `i` and all it holds. */
static int after(const doc_t *d, int i) {
  for (int open = 1; open > 0 && i < d->count; i++) open += d->tok[i].size - 1;
  return i;
}

static bool is(const doc_t *d, int i, const char *s, size_t n) {
  return i >= 0 && d->tok[i].type == JSMN_STRING && (size_t)(d->tok[i].end - d->tok[i].start) == n &&
         memcmp(d->text + d->tok[i].start, s, n) == 0;
}

/* The value of `key` in the object at `obj`, or -1. */
static int field(const doc_t *d, int obj, const char *key) {
  if (obj < 0 || d->tok[obj].type != JSMN_OBJECT) return -1;
  for (int k = 0, i = obj + 1; k < d->tok[obj].size; k++, i = after(d, i + 1)) {
    if (is(d, i, key, strlen(key))) return i + 1;
  }
  return -1;
}

/* A message, formatted into memory of its own (malloc'd). */
static char *message(const char *format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsnprintf(NULL, 0, format, args);
  va_end(args);
  char *text = malloc((size_t)n + 1);
  va_start(args, format);
  vsnprintf(text, (size_t)n + 1, format, args);
  va_end(args);
  return text;
}

/* The limits the config requires (the `limits` list, or memory) as tokens of `config`; a message
 * (malloc'd) when the config is wrong. */
static char *required(const doc_t *config, int *list) {
  *list = -1;
  if (config->count == 0 || config->tok[0].type != JSMN_OBJECT) return message("the config must be a table");
  for (int k = 0, i = 1; k < config->tok[0].size; k++, i = after(config, i + 1)) {
    if (!is(config, i, "limits", 6)) {
      return message("unknown key `%.*s` (known: limits)", config->tok[i].end - config->tok[i].start,
                     config->text + config->tok[i].start);
    }
  }
  *list = field(config, 0, "limits");
  if (*list < 0) return NULL;
  bool strings = config->tok[*list].type == JSMN_ARRAY;
  for (int k = 0, i = *list + 1; strings && k < config->tok[*list].size; k++, i = after(config, i)) {
    strings = config->tok[i].type == JSMN_STRING && config->tok[i].end > config->tok[i].start;
  }
  return strings ? NULL : message("`limits` must be a list of resource names, such as [\"memory\", \"cpu\"]");
}

/* The refusal for the first container without a required limit, or NULL. */
static char *refusal(const doc_t *pod, const doc_t *config, int list) {
  int spec = field(pod, 0, "spec");
  const char *kinds[] = {"containers", "initContainers"};
  for (int k = 0; k < 2; k++) {
    int containers = field(pod, spec, kinds[k]);
    if (containers < 0 || pod->tok[containers].type != JSMN_ARRAY) continue;
    for (int c = 0, i = containers + 1; c < pod->tok[containers].size; c++, i = after(pod, i)) {
      int limits = field(pod, field(pod, i, "resources"), "limits");
      int name = field(pod, i, "name");
      int wanted = list < 0 ? 1 : config->tok[list].size;
      for (int w = 0, j = list + 1; w < wanted; w++, j = after(config, j)) {
        const char *limit = list < 0 ? "memory" : config->text + config->tok[j].start;
        int len = list < 0 ? 6 : config->tok[j].end - config->tok[j].start;
        char key[64];
        snprintf(key, sizeof key, "%.*s", len, limit);
        if (field(pod, limits, key) >= 0) continue;
        return message("container %.*s has no %s limit", name < 0 ? 1 : pod->tok[name].end - pod->tok[name].start,
                       name < 0 ? "?" : pod->text + pod->tok[name].start, key);
      }
    }
  }
  return NULL;
}

static string_t owned(char *s) { return (string_t){(uint8_t *)s, strlen(s)}; }

bool exports_kpo_plugin_settings_validate_config(string_t *config_text, string_t *err) {
  doc_t config;
  int list;
  parse(&config, (const char *)config_text->ptr, config_text->len);
  char *problem = required(&config, &list);
  free(config.tok);
  configured_validator_plugin_string_free(config_text);
  if (problem != NULL) *err = owned(problem);
  return problem == NULL;
}

void exports_kpo_plugin_validator_validate(string_t *pod_text, exports_kpo_plugin_validator_context_t *context,
                                           exports_kpo_plugin_validator_admission_t *ret) {
  doc_t pod, config;
  int list;
  parse(&pod, (const char *)pod_text->ptr, pod_text->len);
  parse(&config, (const char *)context->config.ptr, context->config.len);
  char *reason = required(&config, &list);
  if (reason == NULL) reason = refusal(&pod, &config, list);
  if (reason != NULL) {
    ret->tag = KPO_PLUGIN_TYPES_ADMISSION_REFUSE;
    ret->val.refuse = owned(reason);
  } else {
    ret->tag = KPO_PLUGIN_TYPES_ADMISSION_ACCEPT;
  }
  free(pod.tok);
  free(config.tok);
  configured_validator_plugin_string_free(pod_text);
  exports_kpo_plugin_validator_context_free(context);
}
