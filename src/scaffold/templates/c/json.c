/* jsmn's code (it is header-only: one file of the program compiles it) and the helpers of json.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsmn.h"
#include "json.h"

bool json_parse(json_doc *doc, const char *text, size_t len) {
  jsmn_parser parser;
  jsmn_init(&parser);
  int count = jsmn_parse(&parser, text, len, NULL, 0);
  doc->text = text;
  doc->tokens = NULL;
  doc->count = 0;
  if (count <= 0) return false;
  doc->tokens = calloc((size_t)count, sizeof(jsmntok_t));
  jsmn_init(&parser);
  doc->count = jsmn_parse(&parser, text, len, doc->tokens, (unsigned)count);
  return doc->count > 0;
}

void json_free(json_doc *doc) {
  free(doc->tokens);
  doc->tokens = NULL;
  doc->count = 0;
}

int json_next(const json_doc *doc, int i) {
  for (int pending = 1; pending > 0 && i < doc->count; i++) {
    pending += doc->tokens[i].size - 1;
  }
  return i;
}

int json_get(const json_doc *doc, int object, const char *key) {
  return json_find(doc, object, key, strlen(key));
}

int json_find(const json_doc *doc, int object, const char *key, size_t len) {
  if (json_type(doc, object) != JSMN_OBJECT) return -1;
  int i = object + 1;
  for (int k = 0; k < doc->tokens[object].size && i + 1 < doc->count; k++) {
    if (json_is(doc, i, key, len)) return i + 1;
    i = json_next(doc, i + 1);
  }
  return -1;
}

int json_unknown_key(const json_doc *doc, int object, const char *known) {
  int i = object + 1;
  for (int k = 0; k < doc->tokens[object].size && i < doc->count; k++) {
    if (!json_is(doc, i, known, strlen(known))) return i;
    i = json_next(doc, i + 1);
  }
  return -1;
}

jsmntype_t json_type(const json_doc *doc, int i) {
  return i >= 0 && i < doc->count ? doc->tokens[i].type : JSMN_UNDEFINED;
}

const char *json_start(const json_doc *doc, int i) { return doc->text + doc->tokens[i].start; }

int json_len(const json_doc *doc, int i) { return doc->tokens[i].end - doc->tokens[i].start; }

bool json_is(const json_doc *doc, int i, const char *s, size_t len) {
  return json_type(doc, i) == JSMN_STRING && (size_t)json_len(doc, i) == len &&
         memcmp(json_start(doc, i), s, len) == 0;
}

char *copy_of(const char *s, size_t len) {
  char *c = malloc(len + 1);
  memcpy(c, s, len);
  c[len] = '\0';
  return c;
}

void text_add(text *t, const char *s, size_t len) {
  if (t->len + len + 1 > t->cap) {
    t->cap = (t->len + len + 1) * 2;
    t->data = realloc(t->data, t->cap);
  }
  memcpy(t->data + t->len, s, len);
  t->len += len;
  t->data[t->len] = '\0';
}

void text_printf(text *t, const char *format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsnprintf(NULL, 0, format, args);
  va_end(args);
  char *s = malloc((size_t)n + 1);
  va_start(args, format);
  vsnprintf(s, (size_t)n + 1, format, args);
  va_end(args);
  text_add(t, s, (size_t)n);
  free(s);
}

void strings_add(strings *m, char *message) {
  m->items = realloc(m->items, (m->len + 1) * sizeof(char *));
  m->items[m->len++] = message;
}

void strings_free(strings *m) {
  for (size_t i = 0; i < m->len; i++) free(m->items[i]);
  free(m->items);
  m->items = NULL;
  m->len = 0;
}
