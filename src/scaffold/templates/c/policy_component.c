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
  strings allowed = {0};
  char *problem = NULL;
  bool ok = allowed_prefixes((const char *)config->ptr, config->len, &allowed, &problem);
  strings_free(&allowed);
  @WORLD_C@_string_free(config);
  if (!ok) *err = owned(problem);
  return ok;
}

void exports_kpo_plugin_validator_validate(string_t *pod, exports_kpo_plugin_validator_context_t *context,
                                           exports_kpo_plugin_validator_admission_t *ret) {
  strings allowed = {0}, warnings = {0};
  char *refusal = NULL;
  if (allowed_prefixes((const char *)context->config.ptr, context->config.len, &allowed, &refusal)) {
    refusal = check_pod((const char *)pod->ptr, pod->len, &allowed, &warnings);
  }
  if (refusal != NULL) {
    ret->tag = KPO_PLUGIN_TYPES_ADMISSION_REFUSE;
    ret->val.refuse = owned(refusal);
  } else if (warnings.len > 0) {
    ret->tag = KPO_PLUGIN_TYPES_ADMISSION_WARN;
    ret->val.warn.ptr = calloc(warnings.len, sizeof(string_t));
    ret->val.warn.len = warnings.len;
    for (size_t i = 0; i < warnings.len; i++) ret->val.warn.ptr[i] = owned(warnings.items[i]);
    free(warnings.items);  /* the strings now belong to the answer */
    warnings = (strings){0};
  } else {
    ret->tag = KPO_PLUGIN_TYPES_ADMISSION_ACCEPT;
  }
  strings_free(&warnings);
  strings_free(&allowed);
  @WORLD_C@_string_free(pod);
  exports_kpo_plugin_validator_context_free(context);
}
