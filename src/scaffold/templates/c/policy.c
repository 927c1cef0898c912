#include <stdlib.h>
#include <string.h>

#include "logic.h"

bool allowed_prefixes(const char *config, size_t len, strings *allowed, char **problem) {
  json_doc doc;
  text message = {0};
  int bad, list;
  if (!json_parse(&doc, config, len) || json_type(&doc, 0) != JSMN_OBJECT) {
    text_printf(&message, "the config must be a table");
  } else if ((bad = json_unknown_key(&doc, 0, "allowed")) >= 0) {
    text_printf(&message, "unknown key `%.*s` (known: allowed)", json_len(&doc, bad), json_start(&doc, bad));
  } else if ((list = json_get(&doc, 0, "allowed")) >= 0) {
    if (json_type(&doc, list) != JSMN_ARRAY) text_printf(&message, "`allowed` must be a list of strings");
    for (int k = 0, i = list + 1; message.len == 0 && k < doc.tokens[list].size; k++, i = json_next(&doc, i)) {
      if (json_type(&doc, i) != JSMN_STRING) {
        text_printf(&message, "`allowed` must be a list of strings");
      } else {
        strings_add(allowed, copy_of(json_start(&doc, i), (size_t)json_len(&doc, i)));
      }
    }
  }
  json_free(&doc);
  *problem = message.data;
  return message.data == NULL;
}

bool pinned(const char *image, size_t len) {
  if (memchr(image, '@', len) != NULL) return true;
  size_t last = len;
  while (last > 0 && image[last - 1] != '/') last--;
  const char *colon = memchr(image + last, ':', len - last);
  if (colon == NULL) return false;
  size_t tag = (size_t)(image + len - colon - 1);
  return !(tag == 6 && memcmp(colon + 1, "latest", 6) == 0);
}

static bool starts_with_any(const char *image, size_t len, const strings *prefixes) {
  for (size_t i = 0; i < prefixes->len; i++) {
    size_t n = strlen(prefixes->items[i]);
    if (n <= len && memcmp(image, prefixes->items[i], n) == 0) return true;
  }
  return false;
}

/* The reason to refuse one container, or NULL; a warning when it has no memory limit. */
static char *check_container(const json_doc *doc, int container, const strings *allowed, strings *warnings) {
  int name = json_get(doc, container, "name");
  int image = json_get(doc, container, "image");
  int name_len = name < 0 ? 1 : json_len(doc, name);
  const char *name_text = name < 0 ? "?" : json_start(doc, name);
  int image_len = image < 0 ? 0 : json_len(doc, image);
  const char *image_text = image < 0 ? "" : json_start(doc, image);
  text out = {0};
  if (!pinned(image_text, (size_t)image_len)) {
    text_printf(&out, "container %.*s: image %.*s has no pinned tag (latest or none)", name_len, name_text,
                image_len, image_text);
    return out.data;
  }
  if (allowed->len > 0 && !starts_with_any(image_text, (size_t)image_len, allowed)) {
    text_printf(&out, "container %.*s: image %.*s starts with none of the allowed prefixes (", name_len,
                name_text, image_len, image_text);
    for (size_t i = 0; i < allowed->len; i++) text_printf(&out, "%s%s", i ? ", " : "", allowed->items[i]);
    text_printf(&out, ")");
    return out.data;
  }
  int limits = json_get(doc, json_get(doc, container, "resources"), "limits");
  if (json_get(doc, limits, "memory") < 0) {
    text_printf(&out, "container %.*s has no memory limit", name_len, name_text);
    strings_add(warnings, out.data);
  }
  return NULL;
}

char *check_pod(const char *pod, size_t len, const strings *allowed, strings *warnings) {
  json_doc doc;
  if (!json_parse(&doc, pod, len)) return copy_of("the pod is not JSON", 19);
  char *refusal = NULL;
  int spec = json_get(&doc, 0, "spec");
  const char *fields[] = {"containers", "initContainers"};
  for (int f = 0; f < 2 && refusal == NULL; f++) {
    int list = json_get(&doc, spec, fields[f]);
    if (json_type(&doc, list) != JSMN_ARRAY) continue;
    for (int k = 0, i = list + 1; refusal == NULL && k < doc.tokens[list].size; k++, i = json_next(&doc, i)) {
      refusal = check_container(&doc, i, allowed, warnings);
    }
  }
  json_free(&doc);
  return refusal;
}
