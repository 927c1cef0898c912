/* kpo validating policy in C (contract kpo:plugin@0.2.0, world configured-validator-plugin):
 * refuses a pod with a container that lacks a resource limit the organisation requires — memory
 * by default, or those its config names:
 *
 *   [[policy]]
 *   path = "plugins/target/c/require_limits.wasm"
 *   config = { limits = ["memory", "cpu"] }
 *
 * JSON is read with jsmn (Debian's libjsmn-dev) through the helpers `kpo plugin new --lang c`
 * gives every C project (json.h, compiled from kpo's templates). Built with `make`; see README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "configured_validator_plugin.h"
#include "json.h"

typedef configured_validator_plugin_string_t string_t;

/* The limits the config requires (the `limits` list, or memory) as tokens of `config`; a message
 * (malloc'd) when the config is wrong. */
static char *required(const json_doc *config, int *list) {
  text problem = {0};
  *list = -1;
  if (json_type(config, 0) != JSMN_OBJECT) {
    text_printf(&problem, "the config must be a table");
    return problem.data;
  }
  int unknown = json_unknown_key(config, 0, "limits");
  if (unknown >= 0) {
    text_printf(&problem, "unknown key `%.*s` (known: limits)", json_len(config, unknown), json_start(config, unknown));
    return problem.data;
  }
  *list = json_get(config, 0, "limits");
  if (*list < 0) return NULL;
  bool names = json_type(config, *list) == JSMN_ARRAY;
  for (int k = 0, i = *list + 1; names && k < config->tokens[*list].size; k++, i = json_next(config, i)) {
    names = json_type(config, i) == JSMN_STRING && json_len(config, i) > 0;
  }
  if (!names) text_printf(&problem, "`limits` must be a list of resource names, such as [\"memory\", \"cpu\"]");
  return problem.data;
}

/* The refusal for the first container without a required limit, or NULL. */
static char *refusal(const json_doc *pod, const json_doc *config, int list) {
  int spec = json_get(pod, 0, "spec");
  const char *kinds[] = {"containers", "initContainers"};
  for (int k = 0; k < 2; k++) {
    int containers = json_get(pod, spec, kinds[k]);
    if (json_type(pod, containers) != JSMN_ARRAY) continue;
    for (int c = 0, i = containers + 1; c < pod->tokens[containers].size; c++, i = json_next(pod, i)) {
      int limits = json_get(pod, json_get(pod, i, "resources"), "limits");
      int name = json_get(pod, i, "name");
      int wanted = list < 0 ? 1 : config->tokens[list].size;
      for (int w = 0, j = list + 1; w < wanted; w++, j = json_next(config, j)) {
        const char *limit = list < 0 ? "memory" : json_start(config, j);
        size_t len = list < 0 ? 6 : (size_t)json_len(config, j);
        if (json_find(pod, limits, limit, len) >= 0) continue;
        text why = {0};
        text_printf(&why, "container %.*s has no %.*s limit", name < 0 ? 1 : json_len(pod, name),
                    name < 0 ? "?" : json_start(pod, name), (int)len, limit);
        return why.data;
      }
    }
  }
  return NULL;
}

static string_t owned(char *s) { return (string_t){(uint8_t *)s, strlen(s)}; }

bool exports_kpo_plugin_settings_validate_config(string_t *config_text, string_t *err) {
  json_doc config;
  int list;
  json_parse(&config, (const char *)config_text->ptr, config_text->len);
  char *problem = required(&config, &list);
  json_free(&config);
  configured_validator_plugin_string_free(config_text);
  if (problem != NULL) *err = owned(problem);
  return problem == NULL;
}

void exports_kpo_plugin_validator_validate(string_t *pod_text, exports_kpo_plugin_validator_context_t *context,
                                           exports_kpo_plugin_validator_admission_t *ret) {
  json_doc pod, config;
  int list;
  json_parse(&pod, (const char *)pod_text->ptr, pod_text->len);
  json_parse(&config, (const char *)context->config.ptr, context->config.len);
  char *reason = required(&config, &list);
  if (reason == NULL) reason = refusal(&pod, &config, list);
  if (reason != NULL) {
    ret->tag = KPO_PLUGIN_TYPES_ADMISSION_REFUSE;
    ret->val.refuse = owned(reason);
  } else {
    ret->tag = KPO_PLUGIN_TYPES_ADMISSION_ACCEPT;
  }
  json_free(&pod);
  json_free(&config);
  configured_validator_plugin_string_free(pod_text);
  exports_kpo_plugin_validator_context_free(context);
}
