/* @SUMMARY@
 *
 * The logic, in plain C: test_logic.c tests it natively (`make test`); component.c binds it to
 * kpo's contract. */
#ifndef PLUGIN_LOGIC_H
#define PLUGIN_LOGIC_H

#include <stddef.h>

#include "json.h"

/* What is wrong with the config (`{"labels": {"team": "data"}}`), malloc'd; NULL if nothing. */
char *config_problem(const char *config, size_t len);

/* The pod (JSON text) with each label of the config it lacks added, malloc'd; a label it has with
 * another value stays, with a warning in *warnings. NULL and *problem (malloc'd) when the config
 * or the pod cannot be used. */
char *add_labels(const char *pod, size_t pod_len, const char *config, size_t config_len, strings *warnings,
                 char **problem);

#endif
