#include <stdlib.h>
#include <string.h>

#include "logic.h"

/* Checks the parsed config; the token of its labels object (-1: none) or -2 with *message. */
static int labels_of(const json_doc *doc, bool parsed, text *message) {
  int bad, labels;
  if (!parsed || json_type(doc, 0) != JSMN_OBJECT) {
    text_printf(message, "the config must be a table");
    return -2;
  }
  if ((bad = json_unknown_key(doc, 0, "labels")) >= 0) {
    text_printf(message, "unknown key `%.*s` (known: labels)", json_len(doc, bad), json_start(doc, bad));
    return -2;
  }
  if ((labels = json_get(doc, 0, "labels")) < 0) return -1;
  if (json_type(doc, labels) != JSMN_OBJECT) {
    text_printf(message, "`labels` must be a table");
    return -2;
  }
  for (int k = 0, i = labels + 1; k < doc->tokens[labels].size; k++, i = json_next(doc, i + 1)) {
    if (json_type(doc, i + 1) != JSMN_STRING) {
      text_printf(message, "label `%.*s` must be a string", json_len(doc, i), json_start(doc, i));
      return -2;
    }
  }
  return labels;
}

char *config_problem(const char *config, size_t len) {
  json_doc doc;
  text message = {0};
  labels_of(&doc, json_parse(&doc, config, len), &message);
  json_free(&doc);
  return message.data;
}

/* `"key":"value"` for each wanted label the pod's labels (token `have`, -1: none) lack, comma-separated;
 * a warning for each it has with another value. */
static text missing_labels(const json_doc *config, int wanted, const json_doc *pod, int have, strings *warnings) {
  text added = {0};
  for (int k = 0, i = wanted + 1; k < config->tokens[wanted].size; k++, i = json_next(config, i + 1)) {
    int key_len = json_len(config, i), value_len = json_len(config, i + 1);
    const char *key = json_start(config, i), *value = json_start(config, i + 1);
    int old = json_find(pod, have, key, (size_t)key_len);
    if (old < 0) {
      text_printf(&added, "%s\"%.*s\":\"%.*s\"", added.len ? "," : "", key_len, key, value_len, value);
    } else if (json_len(pod, old) != value_len || memcmp(json_start(pod, old), value, (size_t)value_len) != 0) {
      text warning = {0};
      text_printf(&warning, "label %.*s stays \"%.*s\" (the config asks for \"%.*s\")", key_len, key,
                  json_len(pod, old), json_start(pod, old), value_len, value);
      strings_add(warnings, warning.data);
    }
  }
  return added;
}

/* The pod's text with `members` put first into the object at token `object`. */
static char *insert_members(const json_doc *pod, size_t pod_len, int object, const char *members) {
  text out = {0};
  size_t at = (size_t)pod->tokens[object].start + 1;
  text_add(&out, pod->text, at);
  text_printf(&out, "%s%s", members, pod->tokens[object].size > 0 ? "," : "");
  text_add(&out, pod->text + at, pod_len - at);
  return out.data;
}

/* The labelled pod, or NULL with *message. */
static char *labelled(const json_doc *config, int wanted, const json_doc *pod, size_t pod_len, strings *warnings,
                      text *message) {
  int metadata = json_get(pod, 0, "metadata");
  int have = json_get(pod, metadata, "labels");
  if (json_type(pod, 0) != JSMN_OBJECT) {
    text_printf(message, "the pod is not a JSON object");
    return NULL;
  }
  if (have >= 0 && json_type(pod, have) != JSMN_OBJECT) {
    text_printf(message, "metadata.labels is not an object");
    return NULL;
  }
  if (wanted < 0) return copy_of(pod->text, pod_len);
  text added = missing_labels(config, wanted, pod, have, warnings);
  text members = {0};
  char *result;
  if (added.len == 0) {
    result = copy_of(pod->text, pod_len);
  } else if (have >= 0) {
    result = insert_members(pod, pod_len, have, added.data);
  } else if (json_type(pod, metadata) == JSMN_OBJECT) {
    text_printf(&members, "\"labels\":{%s}", added.data);
    result = insert_members(pod, pod_len, metadata, members.data);
  } else {
    text_printf(&members, "\"metadata\":{\"labels\":{%s}}", added.data);
    result = insert_members(pod, pod_len, 0, members.data);
  }
  free(added.data);
  free(members.data);
  return result;
}

char *add_labels(const char *pod_text, size_t pod_len, const char *config_text, size_t config_len,
                 strings *warnings, char **problem) {
  json_doc config, pod;
  text message = {0};
  char *result = NULL;
  int wanted = labels_of(&config, json_parse(&config, config_text, config_len), &message);
  json_parse(&pod, pod_text, pod_len);
  if (wanted != -2) result = labelled(&config, wanted, &pod, pod_len, warnings, &message);
  json_free(&config);
  json_free(&pod);
  *problem = message.data;
  return result;
}
