#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "logic.h"

char *marker_of(const char *config, size_t len, char **problem) {
  json_doc doc;
  char *marker = NULL;
  text message = {0};
  int bad, value;
  if (!json_parse(&doc, config, len) || json_type(&doc, 0) != JSMN_OBJECT) {
    text_printf(&message, "the config must be a table");
  } else if ((bad = json_unknown_key(&doc, 0, "marker")) >= 0) {
    text_printf(&message, "unknown key `%.*s` (known: marker)", json_len(&doc, bad), json_start(&doc, bad));
  } else if ((value = json_get(&doc, 0, "marker")) < 0) {
    marker = copy_of("NOTHING TO DO", 13);
  } else if (json_type(&doc, value) != JSMN_STRING || json_len(&doc, value) == 0) {
    text_printf(&message, "`marker` must be a non-empty string");
  } else {
    marker = copy_of(json_start(&doc, value), (size_t)json_len(&doc, value));
  }
  json_free(&doc);
  *problem = message.data;
  return marker;
}

static bool contains(const char *line, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++) {
    if (memcmp(line + i, needle, n) == 0) return true;
  }
  return false;
}

judged judge(bool succeeded, int exit_code, const char *const *lines, const size_t *lengths,
             size_t count, const char *marker) {
  text out = {0};
  if (!succeeded) {
    text_printf(&out, "the task failed (exit code %d)", exit_code);
    return (judged){JUDGED_FAILURE, out.data};
  }
  for (size_t i = 0; i < count; i++) {
    if (contains(lines[i], lengths[i], marker)) {
      text_printf(&out, "the task said \"%s\"", marker);
      return (judged){JUDGED_SKIP, out.data};
    }
  }
  text_printf(&out, "{\"log_lines\": %zu}", count);
  return (judged){JUDGED_SUCCESS, out.data};
}
