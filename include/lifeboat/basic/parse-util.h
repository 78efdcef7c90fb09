/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Parsing and formatting values: numbers, booleans, times, durations. */

/* Parses a decimal unsigned integer with no trailing garbage, within [min, max]. */
int lb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* Parses "true/false/yes/no/1/0/on/off". */
int lb_parse_bool(const char *s, bool *ret);
/* Parses an RFC 3339 / ISO 8601 UTC time such as 2026-11-26T16:12:55Z or with .000Z. */
int lb_parse_iso8601(const char *s, time_t *ret);
/* Formats t as 2026-11-26T16:12:55Z; -ENAMETOOLONG when buf is too small. */
int lb_format_iso8601(time_t t, char *buf, size_t size);
/* Like lb_format_iso8601(), but "-" for an unset time (t <= 0) or one that cannot be
 * formatted; returns buf, for use as a printf argument. */
const char *lb_format_iso8601_or_dash(time_t t, char *buf, size_t size);

/*
 * Parses a time span as systemd does (systemd.time(7)), into milliseconds: the settings file is
 * also read by units' EnvironmentFile=, whose own settings use these spans. Terms add up ("1h
 * 30min", "55s500ms"), a bare number is seconds, fractions are allowed ("1.5s"), the units are
 * us, ms, s/sec/second(s), m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s), M/month(s),
 * y/year(s); "infinity" is UINT64_MAX. Sub-millisecond parts are dropped. -EINVAL for anything
 * else, -ERANGE for a negative or overflowing span.
 */
int lb_parse_duration_ms(const char *s, uint64_t *ret_ms);
/* The shortest exact spelling lb_parse_duration_ms() reads back: 600000 -> "10min",
 * 90000 -> "90s", 1500 -> "1500ms". Returns 0, or -ENAMETOOLONG when buf is too small. */
int lb_format_duration_ms(uint64_t ms, char *buf, size_t size);
