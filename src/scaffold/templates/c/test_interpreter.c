/* The logic's tests, run natively: make test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "logic.h"

int main(void) {
  const char *lines[] = {"looking", "NOTHING TO DO"};
  const size_t lengths[] = {7, 13};

  judged j = judge(true, 0, lines, lengths, 2, "NOTHING TO DO");
  expect_text("the marker skips the run", j.kind == JUDGED_SKIP ? j.text : NULL,
              "the task said \"NOTHING TO DO\"");
  free(j.text);

  j = judge(true, 0, lines, lengths, 1, "NOTHING TO DO");
  expect_text("a run without it succeeds with its line count", j.kind == JUDGED_SUCCESS ? j.text : NULL,
              "{\"log_lines\": 1}");
  free(j.text);

  j = judge(false, 3, lines, lengths, 0, "x");
  expect_text("a failed run fails", j.kind == JUDGED_FAILURE ? j.text : NULL, "the task failed (exit code 3)");
  free(j.text);

  char *problem = NULL;
  char *marker = marker_of("{}", 2, &problem);
  expect_text("the default marker", marker, "NOTHING TO DO");
  free(marker);
  const char *misspelt = "{\"mark\": \"x\"}";
  free(marker_of(misspelt, strlen(misspelt), &problem));
  expect_text("a misspelt config is refused", problem, "unknown key `mark` (known: marker)");
  free(problem);

  return failures == 0 ? 0 : 1;
}
