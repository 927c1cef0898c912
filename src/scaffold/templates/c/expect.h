/* What the tests of test_logic.c check with: a text equal to the one expected (NULL for none),
 * said as `ok` or `FAIL`; `failures` counts the failed ones for main's exit code. */
#ifndef PLUGIN_EXPECT_H
#define PLUGIN_EXPECT_H

#include <stdio.h>
#include <string.h>

static int failures = 0;

static void expect_text(const char *what, const char *actual, const char *expected) {
  if (actual == NULL ? expected != NULL : expected == NULL || strcmp(actual, expected) != 0) {
    fprintf(stderr, "FAIL %s: got \"%s\", expected \"%s\"\n", what, actual ? actual : "(null)",
            expected ? expected : "(null)");
    failures++;
  } else {
    printf("ok   %s\n", what);
  }
}

#endif
