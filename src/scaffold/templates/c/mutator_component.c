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
  char *problem = config_problem((const char *)config->ptr, config->len);
  @WORLD_C@_string_free(config);
  if (problem == NULL) return true;
  *err = owned(problem);
  return false;
}

/* `err` (false, with the reason in *err) refuses the pod: kpo then creates none. */
bool exports_kpo_plugin_mutator_mutate(string_t *pod, exports_kpo_plugin_mutator_context_t *context,
                                       exports_kpo_plugin_mutator_mutated_t *ret, string_t *err) {
  strings warnings = {0};
  char *problem = NULL;
  char *mutated = add_labels((const char *)pod->ptr, pod->len, (const char *)context->config.ptr,
                             context->config.len, &warnings, &problem);
  @WORLD_C@_string_free(pod);
  exports_kpo_plugin_mutator_context_free(context);
  if (mutated == NULL) {
    strings_free(&warnings);
    *err = owned(problem);
    return false;
  }
  ret->pod = owned(mutated);
  ret->warnings.ptr = calloc(warnings.len + 1, sizeof(string_t));
  ret->warnings.len = warnings.len;
  for (size_t i = 0; i < warnings.len; i++) ret->warnings.ptr[i] = owned(warnings.items[i]);
  free(warnings.items); /* the strings now belong to the answer */
  return true;
}
