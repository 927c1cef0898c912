/* @SUMMARY@
 *
 * The logic, in plain C: test_logic.c tests it natively (`make test`); component.c binds it to
 * kpo's contract. */
#ifndef PLUGIN_LOGIC_H
#define PLUGIN_LOGIC_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

/* The image prefixes the config allows (`{"allowed": ["registry.example.com/"]}`) into *allowed
 * (none: any image); false and *problem (malloc'd) when the config is wrong. */
bool allowed_prefixes(const char *config, size_t len, strings *allowed, char **problem);

/* Whether an image names a fixed version: a tag other than `latest`, or a digest. */
bool pinned(const char *image, size_t len);

/* The reason to refuse the pod (malloc'd): its first image that is unpinned or not allowed. NULL
 * if it may go, with a warning in *warnings for each container without a memory limit. */
char *check_pod(const char *pod, size_t len, const strings *allowed, strings *warnings);

#endif
