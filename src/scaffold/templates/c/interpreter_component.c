/* The component: binds logic.c to kpo's contract (world @WORLD@), through the bindings
 * `wit-bindgen c` writes into gen/. An export owns its arguments and frees them; what it returns
 * is freed by the bindings after kpo has read it. */
#include <stdlib.h>
#include <string.h>

#include "@WORLD_C@.h"
#include "logic.h"

typedef @WORLD_C@_string_t string_t;

/* A malloc'd C string handed over to a WIT string (which then owns it). */
static string_t owned(char *s) { return (string_t){(uint8_t *)s, strlen(s)}; }

bool exports_kpo_plugin_settings_validate_config(string_t *config, string_t *err) {
  char *problem = NULL;
  free(marker_of((const char *)config->ptr, config->len, &problem));
  @WORLD_C@_string_free(config);
  if (problem == NULL) return true;
  *err = owned(problem);
  return false;
}

void exports_kpo_plugin_interpreter_interpret(exports_kpo_plugin_interpreter_outcome_t *outcome,
                                               exports_kpo_plugin_interpreter_context_t *context,
                                               exports_kpo_plugin_interpreter_judgement_t *ret) {
  char *problem = NULL;
  char *marker = marker_of((const char *)context->config.ptr, context->config.len, &problem);
  ret->outputs.is_some = false;
  if (marker == NULL) {
    ret->verdict.tag = KPO_PLUGIN_TYPES_VERDICT_FAILURE;
    ret->verdict.val.failure = owned(problem);
  } else {
    size_t count = outcome->log_tail.len;
    const char **lines = calloc(count + 1, sizeof(char *));
    size_t *lengths = calloc(count + 1, sizeof(size_t));
    for (size_t i = 0; i < count; i++) {
      lines[i] = (const char *)outcome->log_tail.ptr[i].ptr;
      lengths[i] = outcome->log_tail.ptr[i].len;
    }
    bool succeeded = outcome->status == KPO_PLUGIN_TYPES_STATUS_SUCCEEDED;
    judged j = judge(succeeded, outcome->exit_code, lines, lengths, count, marker);
    free(lines);
    free(lengths);
    free(marker);
    if (j.kind == JUDGED_FAILURE) {
      ret->verdict.tag = KPO_PLUGIN_TYPES_VERDICT_FAILURE;
      ret->verdict.val.failure = owned(j.text);
    } else if (j.kind == JUDGED_SKIP) {
      ret->verdict.tag = KPO_PLUGIN_TYPES_VERDICT_SKIP;
      ret->verdict.val.skip = owned(j.text);
    } else {
      ret->verdict.tag = KPO_PLUGIN_TYPES_VERDICT_SUCCESS;
      ret->outputs.is_some = true;
      ret->outputs.val = owned(j.text);
    }
  }
  exports_kpo_plugin_interpreter_outcome_free(outcome);
  exports_kpo_plugin_interpreter_context_free(context);
}
