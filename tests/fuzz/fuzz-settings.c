/* SPDX-License-Identifier: MIT */
/* basic/settings: the config file. Whatever it sets, the dump of the settings reads back into
 * the same settings (the values the dump hides aside). */
#include "lifeboat/basic/settings.h"
#include "lifeboat/basic/util.h"
#include "fuzz.h"

/* The settings whose value the dump hides: the secrets say "(set)" or "(unset)", the container
 * URIs only their host and first path segment. */
static bool is_secret_line(const char *line) {
        static const char *const secrets[] = {
                "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_CONTAINER_AUTHORIZATION_TOKEN=",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=",
        };
        for (size_t i = 0; i < ELEMENTSOF(secrets); i++)
                if (lb_startswith(line, secrets[i]))
                        return true;
        return false;
}

/* The dump without the secrets' lines. */
static char *dump_public(const struct lb_settings *s) {
        _cleanup_free_ char *dump = NULL;
        if (lb_settings_dump(s, &dump) < 0)
                return NULL;
        _cleanup_buf_ struct lb_buf b = { 0 };
        for (char *line = dump, *nl; *line; line = nl + 1) {
                nl = strchr(line, '\n');
                fuzz_check(nl);
                if (is_secret_line(line))
                        continue;
                if (lb_buf_append(&b, line, (size_t) (nl - line + 1)) < 0)
                        return NULL;
        }
        return lb_buf_steal(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct lb_context ctx, again;
        _cleanup_free_ char *text = fuzz_string(data, size), *dump = NULL, *dump2 = NULL;
        if (!text || fuzz_context(&ctx) < 0)
                return 0;
        if (lb_settings_parse_config(&ctx, text, "fuzz.conf") >= 0 && (dump = dump_public(&ctx.settings))) {
                fuzz_check(fuzz_context(&again) == 0);
                fuzz_check(lb_settings_parse_config(&again, dump, "dump") == 0);
                dump2 = dump_public(&again.settings);
                fuzz_check(dump2 && streq(dump, dump2));
                lb_context_done(&again);
        }
        lb_context_done(&ctx);
        return 0;
}
