/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "lifeboat/basic/json.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"

json_t *lb_json_string_or_null(const char *s) {
        return isempty(s) ? json_null() : json_string(s);
}

int lb_json_get_string(json_t *obj, const char *key, bool optional, char *dst, size_t size) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v)) {
                if (!optional)
                        return -EBADMSG;
                dst[0] = '\0';
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        /* No embedded NUL: json_loadb() rejects \u0000 unless asked not to. */
        if (json_string_length(v) >= size)
                return -EBADMSG;
        return lb_strscpy(dst, size, json_string_value(v)) < 0 ? -EBADMSG : 0;
}

int lb_json_dump_line(const json_t *root, size_t flags, char **ret_text) {
        _cleanup_free_ char *text = json_dumps(root, flags);
        if (!text)
                return -ENOMEM;
        _cleanup_buf_ struct lb_buf b = { 0 };
        int r = lb_buf_printf(&b, "%s\n", text);
        if (r < 0)
                return r;
        char *out = lb_buf_steal(&b);
        if (!out)
                return -ENOMEM;
        *ret_text = out;
        return 0;
}

json_t *lb_json_time_or_null(time_t t) {
        char buf[40];
        if (t <= 0 || lb_format_iso8601(t, buf, sizeof buf) < 0)
                return json_null();
        return json_string(buf);
}
