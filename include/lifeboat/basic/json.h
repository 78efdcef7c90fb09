/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Small jansson helpers shared by the documents lifeboat writes and reads. */

/* A JSON string, or null for NULL or "". NULL only when out of memory. */
json_t *lb_json_string_or_null(const char *s);

/*
 * Copies the string member key of obj into dst (size bytes). A missing or null member is ""
 * when optional, else -EBADMSG; another type, or a string that does not fit, is -EBADMSG.
 */
int lb_json_get_string(json_t *obj, const char *key, bool optional, char *dst, size_t size);

/* json_dumps(root, flags) with a trailing newline, as a file or stdout wants it. Returns 0 and
 * the malloc'd text, or -ENOMEM. */
int lb_json_dump_line(const json_t *root, size_t flags, char **ret_text);

/* An ISO 8601 UTC string for a time, or null for an unset one (t <= 0). */
json_t *lb_json_time_or_null(time_t t);
