/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "lifeboat/basic/macro.h"

/*
 * Untrusted text (tag values, file names, answers) on its way to a report, a log line or a
 * table. Cut it only on character boundaries (a cut inside a UTF-8 sequence makes invalid
 * text, which JSON encoders refuse), and escape what a terminal or the journal would act on.
 */

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 when s[0..n) does not start one
 * (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, or cut short). */
size_t lb_utf8_char_len(const char *s, size_t n);
/* Whether s[0..n) is valid UTF-8 (NUL bytes count as invalid). */
bool lb_utf8_valid(const char *s, size_t n);
/* Copies s into buf (size > 0), cut to fit on a character boundary; invalid bytes are kept
 * as they are (escape them with lb_cescape() when they go to a terminal). Returns buf. */
const char *lb_utf8_copy(char *buf, size_t size, const char *s);
/* vsnprintf() into buf, cut to fit on a character boundary of the result. */
void lb_utf8_snprintf(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
/* The same with a va_list, for functions that format a reason of their own. */
void lb_utf8_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) _printf_(3, 0);

/*
 * Escapes s for one line of a log or a table, as systemd's cescape() does: backslash and
 * control characters (newline, tab, escape, DEL, C1) become C escapes ("\\n", "\\t", "\\x1b"),
 * bytes that are not valid UTF-8 become "\\xNN", valid UTF-8 is kept. The result fits size
 * (cut on an escape or character boundary, ending in "..." when cut). Returns buf.
 */
const char *lb_cescape(const char *s, char *buf, size_t size);
/* The same for the first n bytes of s (up to a NUL). */
const char *lb_cescapen(const char *s, size_t n, char *buf, size_t size);
