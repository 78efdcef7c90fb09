/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/basic/utf8.h"

size_t lb_utf8_char_len(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;
        if (n == 0 || p[0] == 0)
                return 0;
        if (p[0] < 0x80)
                return 1;
        size_t len;
        uint32_t cp, min;
        if ((p[0] & 0xE0) == 0xC0) {
                len = 2, cp = p[0] & 0x1F, min = 0x80;
        } else if ((p[0] & 0xF0) == 0xE0) {
                len = 3, cp = p[0] & 0x0F, min = 0x800;
        } else if ((p[0] & 0xF8) == 0xF0) {
                len = 4, cp = p[0] & 0x07, min = 0x10000;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return len;
}

bool lb_utf8_valid(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                size_t k = lb_utf8_char_len(s + i, n - i);
                if (k == 0)
                        return false;
                i += k;
        }
        return true;
}

/* The longest prefix of s[0..n) that fits max bytes and does not end inside a valid character. */
static size_t boundary_at_most(const char *s, size_t n, size_t max) {
        size_t i = 0;
        while (i < n) {
                size_t k = lb_utf8_char_len(s + i, n - i);
                if (k == 0)
                        k = 1; /* an invalid byte stands alone */
                if (i + k > max)
                        break;
                i += k;
        }
        return i;
}

const char *lb_utf8_copy(char *buf, size_t size, const char *s) {
        if (size == 0)
                return buf;
        size_t n = strlen(s);
        size_t k = boundary_at_most(s, n, size - 1);
        memmove(buf, s, k);
        buf[k] = '\0';
        return buf;
}

void lb_utf8_snprintf(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        lb_utf8_vsnprintf(buf, size, fmt, ap);
        va_end(ap);
}

void lb_utf8_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
        if (size == 0)
                return;
        /* The whole text first, whatever its length: a cut made by vsnprintf() itself could
         * end inside a character, and lb_utf8_copy() keeps such bytes. */
        char *full = NULL;
        if (vasprintf(&full, fmt, ap) < 0) {
                buf[0] = '\0';
                return;
        }
        (void) lb_utf8_copy(buf, size, full);
        free(full);
}

/* The escape of one byte that is not shown as itself, into out (at least 5 bytes). */
static void escape_byte(unsigned char c, char *out) {
        static const char names[] = { ['\a'] = 'a', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
                                      ['\r'] = 'r', ['\t'] = 't', ['\v'] = 'v', ['\\'] = '\\' };
        if (c < sizeof names && names[c]) {
                out[0] = '\\', out[1] = names[c], out[2] = '\0';
                return;
        }
        (void) snprintf(out, 5, "\\x%02x", c);
}

/* The next piece of the escaped text at s[i] (of n): its text into piece (at least 8 bytes);
 * returns how many bytes of s it stands for. */
static size_t next_piece(const char *s, size_t n, size_t i, char *piece) {
        size_t k = lb_utf8_char_len(s + i, n - i);
        unsigned char c = (unsigned char) s[i];
        /* C1 controls (U+0080..U+009F) act on terminals too. */
        bool c1 = k == 2 && c == 0xC2 && (unsigned char) s[i + 1] < 0xA0;
        if (c1) {
                escape_byte((unsigned char) s[i + 1], piece);
                return 2;
        }
        if (k == 0 || c < 0x20 || c == 0x7f || c == '\\') {
                escape_byte(c, piece);
                return 1;
        }
        memcpy(piece, s + i, k);
        piece[k] = '\0';
        return k;
}

const char *lb_cescape(const char *s, char *buf, size_t size) {
        return lb_cescapen(s, strlen(s), buf, size);
}

const char *lb_cescapen(const char *s, size_t n, char *buf, size_t size) {
        static const char ellipsis[] = "...";
        char piece[8];
        if (size == 0)
                return buf;
        n = strnlen(s, n);
        size_t total = 0;
        for (size_t i = 0; i < n;)
                i += next_piece(s, n, i, piece), total += strlen(piece);
        /* When it does not all fit, keep room for the ellipsis. */
        size_t limit = total < size ? size - 1 : (size > sizeof ellipsis ? size - sizeof ellipsis : 0);
        size_t o = 0;
        for (size_t i = 0; i < n;) {
                size_t k = next_piece(s, n, i, piece), len = strlen(piece);
                if (o + len > limit)
                        break;
                memcpy(buf + o, piece, len);
                o += len;
                i += k;
        }
        buf[o] = '\0';
        if (total >= size && o + sizeof ellipsis <= size)
                memcpy(buf + o, ellipsis, sizeof ellipsis);
        return buf;
}
