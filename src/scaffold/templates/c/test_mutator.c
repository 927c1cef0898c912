/* The logic's tests, run natively: make test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "logic.h"

/* The pod with the config's labels added, or what went wrong. */
static char *labelled(const char *pod, const char *config, strings *warnings) {
  char *problem = NULL;
  char *out = add_labels(pod, strlen(pod), config, strlen(config), warnings, &problem);
  return out != NULL ? out : problem;
}

int main(void) {
  strings warnings = {0};
  const char *config = "{\"labels\": {\"team\": \"data\", \"tier\": \"batch\"}}";
  char *pod = labelled("{\"metadata\":{\"labels\":{\"team\":\"ml\"}}}", config, &warnings);
  expect_text("adds what is missing", pod, "{\"metadata\":{\"labels\":{\"tier\":\"batch\",\"team\":\"ml\"}}}");
  expect_text("and keeps what is set, with a warning", warnings.len == 1 ? warnings.items[0] : NULL,
              "label team stays \"ml\" (the config asks for \"data\")");
  free(pod);
  strings_free(&warnings);

  pod = labelled("{\"metadata\":{\"name\":\"p\"}}", "{\"labels\": {\"tier\": \"batch\"}}", &warnings);
  expect_text("a pod without labels gets them", pod, "{\"metadata\":{\"labels\":{\"tier\":\"batch\"},\"name\":\"p\"}}");
  free(pod);
  pod = labelled("{}", "{\"labels\": {\"tier\": \"batch\"}}", &warnings);
  expect_text("even without metadata", pod, "{\"metadata\":{\"labels\":{\"tier\":\"batch\"}}}");
  free(pod);

  const char *misspelt = "{\"lables\": {}}";
  char *problem = config_problem(misspelt, strlen(misspelt));
  expect_text("a misspelt config is refused", problem, "unknown key `lables` (known: labels)");
  free(problem);
  problem = labelled("{}", "{\"labels\": {\"n\": 1}}", &warnings);
  expect_text("a label must be a string", problem, "label `n` must be a string");
  free(problem);
  strings_free(&warnings);
  return failures == 0 ? 0 : 1;
}
