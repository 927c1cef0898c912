/* The logic's tests, run natively: make test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "logic.h"

/* The answer about a pod with one container of this image, under this config. */
static char *check(const char *image, const char *config, strings *warnings) {
  char pod[512], *problem = NULL;
  snprintf(pod, sizeof pod, "{\"spec\": {\"containers\": [{\"name\": \"main\", \"image\": \"%s\"}]}}", image);
  strings allowed = {0};
  if (!allowed_prefixes(config, strlen(config), &allowed, &problem)) return problem;
  char *refusal = check_pod(pod, strlen(pod), &allowed, warnings);
  strings_free(&allowed);
  return refusal;
}

int main(void) {
  strings warnings = {0};
  const char *unpinned[] = {"busybox", "busybox:latest", "localhost:5000/busybox"};
  for (int i = 0; i < 3; i++) {
    char expected[256];
    snprintf(expected, sizeof expected, "container main: image %s has no pinned tag (latest or none)", unpinned[i]);
    char *refusal = check(unpinned[i], "{}", &warnings);
    expect_text("an unpinned image is refused", refusal, expected);
    free(refusal);
  }
  expect_text("a tag or a digest is pinned",
              pinned("localhost:5000/busybox:1.36", 27) && pinned("busybox@sha256:abc", 18) ? "yes" : "no", "yes");

  const char *registry = "{\"allowed\": [\"registry.example.com/\"]}";
  char *refusal = check("registry.example.com/app:1.0", registry, &warnings);
  expect_text("an allowed prefix passes", refusal, NULL);
  refusal = check("busybox:1.36", registry, &warnings);
  expect_text("another is refused", refusal,
              "container main: image busybox:1.36 starts with none of the allowed prefixes (registry.example.com/)");
  free(refusal);

  strings_free(&warnings);
  refusal = check("busybox:1.36", "{}", &warnings);
  expect_text("a missing memory limit is a warning", warnings.len == 1 ? warnings.items[0] : NULL,
              "container main has no memory limit");
  strings_free(&warnings);

  char *problem = check("busybox:1.36", "{\"allow\": []}", &warnings);
  expect_text("a misspelt config is refused", problem, "unknown key `allow` (known: allowed)");
  free(problem);
  return failures == 0 ? 0 : 1;
}
