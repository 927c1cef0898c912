/* JSON for the plugin: a parsed document (jsmn's tokens over the text, no copies) and a growing
 * text buffer. jsmn (Debian's libjsmn-dev) is a header-only tokenizer: json.c holds its code. */
#ifndef PLUGIN_JSON_H
#define PLUGIN_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSMN_HEADER
#include "jsmn.h"

/* A parsed document: token 0 is the whole value. */
typedef struct {
  const char *text;
  jsmntok_t *tokens;
  int count;
} json_doc;

/* Parses `len` bytes of `text` (kept, not copied); false if it is not JSON. */
bool json_parse(json_doc *doc, const char *text, size_t len);
void json_free(json_doc *doc);

/* The token after token `i` and everything inside it. */
int json_next(const json_doc *doc, int i);
/* The value of `key` (`len` bytes, as escaped in JSON) in the object at token `object`, or -1. */
int json_find(const json_doc *doc, int object, const char *key, size_t len);
/* json_find of a NUL-terminated key. */
int json_get(const json_doc *doc, int object, const char *key);
/* The first key of the object at token `object` other than `known`, or -1. */
int json_unknown_key(const json_doc *doc, int object, const char *known);
/* The type of token `i`, JSMN_UNDEFINED for -1. */
jsmntype_t json_type(const json_doc *doc, int i);
/* Where token `i`'s text starts, and how long it is (a string's without its quotes, still escaped). */
const char *json_start(const json_doc *doc, int i);
int json_len(const json_doc *doc, int i);
/* Whether token `i` is the string `s` (`len` bytes, as escaped in JSON). */
bool json_is(const json_doc *doc, int i, const char *s, size_t len);

/* A malloc'd, NUL-terminated copy of `len` bytes of `s`. */
char *copy_of(const char *s, size_t len);

/* Text that grows as it is written; `data` is NUL-terminated and the caller's to free. */
typedef struct {
  char *data;
  size_t len, cap;
} text;

void text_add(text *t, const char *s, size_t len);
void text_printf(text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* A list of strings, each malloc'd: warnings, prefixes. */
typedef struct {
  char **items;
  size_t len;
} strings;

void strings_add(strings *m, char *message);
void strings_free(strings *m);

#endif
