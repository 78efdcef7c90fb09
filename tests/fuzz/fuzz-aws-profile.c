/* SPDX-License-Identifier: MIT */
/* aws/creds-profile: the shared config and credentials files (the INI dialect botocore reads),
 * and the profile sections found in them. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lifeboat/aws/creds-profile.h"
#include "fuzz.h"

static void check_section(const struct lb_ini *ini, const struct lb_ini_section *s) {
        for (size_t i = 0; i < s->n_entries; i++) {
                const struct lb_ini_entry *e = &s->entries[i];
                fuzz_check(e->key[0] != '\0' && e->line > 0);
                for (const char *k = e->key; *k; k++)
                        fuzz_check(!isupper((unsigned char) *k) && *k != '=' && *k != ':' && *k != '\n');
                fuzz_check(!strchr(e->value, '\r'));
                fuzz_check(lb_ini_get(ini, s, e->key) == e);    /* keys are unique in a section */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct lb_ini ini = { 0 };
        unsigned line = 0;
        char error[200];
        int r = lb_ini_parse((const char *) data, size, &ini, &line, error, sizeof error);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ENOMEM);
                fuzz_check(r == -ENOMEM || (line > 0 && error[0] != '\0'));
                fuzz_check(ini.n_sections == 0);
                return 0;
        }
        for (size_t i = 0; i < ini.n_sections; i++) {
                check_section(&ini, &ini.sections[i]);
                /* Each section is the profile of its own name in a credentials file. */
                fuzz_check(lb_ini_profile(&ini, ini.sections[i].name, false) != NULL);
                (void) lb_ini_profile(&ini, ini.sections[i].name, true);
        }
        check_section(&ini, &ini.defaults);
        (void) lb_ini_profile(&ini, "default", true);
        lb_ini_done(&ini);
        return 0;
}
