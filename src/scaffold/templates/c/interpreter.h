/* @SUMMARY@
 *
 * The logic, in plain C: test_logic.c tests it natively (`make test`); component.c binds it to
 * kpo's contract. */
#ifndef PLUGIN_LOGIC_H
#define PLUGIN_LOGIC_H

#include <stdbool.h>
#include <stddef.h>

/* The line that means "nothing to do" (`{"marker": "..."}`), `NOTHING TO DO` by default: the
 * marker (malloc'd) or NULL and *problem (malloc'd) saying what is wrong with the config. */
char *marker_of(const char *config, size_t len, char **problem);

typedef enum { JUDGED_FAILURE, JUDGED_SKIP, JUDGED_SUCCESS } judged_kind;

/* The decision: a reason (failure, skip) or the outputs as a JSON object (success), malloc'd. */
typedef struct {
  judged_kind kind;
  char *text;
} judged;

/* A failed run fails; a run whose log has the marker is skipped; any other succeeds with how many
 * log lines it saw. `lines[i]` is `lengths[i]` bytes long (not NUL-terminated). */
judged judge(bool succeeded, int exit_code, const char *const *lines, const size_t *lengths,
             size_t count, const char *marker);

#endif
