/* SPDX-License-Identifier: MIT */
/*
 * The shared config and credentials files: the INI dialect as botocore reads it (each rule below
 * is one /work/notes/creds.md section 4 observed with awscli), profile sections, the merge of the
 * two files, the region, and the profile source with its errors naming FILE:LINE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/aws/creds-profile.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

/* ---- the INI dialect ---- */

struct parsed {
        struct lb_ini ini;
        unsigned line;
        char error[200];
        int r;
};

static void parse(const char *text, struct parsed *p) {
        *p = (struct parsed) {};
        p->r = lb_ini_parse(text, strlen(text), &p->ini, &p->line, p->error, sizeof p->error);
}

static const char *get(const struct lb_ini *ini, const char *section, const char *key) {
        for (size_t i = 0; i < ini->n_sections; i++)
                if (streq(ini->sections[i].name, section)) {
                        const struct lb_ini_entry *e = lb_ini_get(ini, &ini->sections[i], key);
                        return e ? e->value : NULL;
                }
        return NULL;
}

static void test_ini_basics(void **state) {
        struct parsed p;
        parse("# comment\n"
              "; another\n"
              "[default]\n"
              "aws_access_key_id = AKIA # not a comment\n"
              "AWS_Secret_Access_Key: s3cr=t\n"
              "  ; an indented comment\n"
              "region=\n"
              "spaced key = 1;2\n"
              "quoted = \"q\"\n"
              "[x] trailing text\n"
              "a=b=c\r\n"
              "[a]b]\r"
              "k = v\n",
              &p);
        assert_int_equal(p.r, 0);
        assert_int_equal(p.ini.n_sections, 3);
        assert_string_equal(get(&p.ini, "default", "aws_access_key_id"), "AKIA # not a comment");
        assert_string_equal(get(&p.ini, "default", "aws_secret_access_key"), "s3cr=t");     /* keys lower-cased */
        assert_string_equal(get(&p.ini, "default", "region"), "");
        assert_string_equal(get(&p.ini, "default", "spaced key"), "1;2");
        assert_string_equal(get(&p.ini, "default", "quoted"), "\"q\"");
        assert_string_equal(get(&p.ini, "x", "a"), "b=c");                  /* CRLF is fine */
        assert_string_equal(get(&p.ini, "a]b", "k"), "v");                  /* up to the last ']'; CR alone ends a line */
        assert_int_equal(p.ini.sections[0].line, 3);
        assert_int_equal(p.ini.sections[0].entries[1].line, 5);
        lb_ini_done(&p.ini);

        parse("", &p);
        assert_int_equal(p.r, 0);
        assert_int_equal(p.ini.n_sections, 0);
        lb_ini_done(&p.ini);
}

static void test_ini_continuations_and_defaults(void **state) {
        struct parsed p;
        parse("[DEFAULT]\n"
              "region = eu-north-1\n"
              "[default]\n"
              "region=us-east-1\n"
              "  x = y\n"              /* deeper than its key: part of the value */
              "\n"
              "  more\n"
              "aws_access_key_id = A\n"
              "[profile p]\n"
              "s3 =\n"
              "  addressing_style = path\n"
              "  signature_version = s3v4\n"
              "trailing = t\n"
              "\n"
              "\n",
              &p);
        assert_int_equal(p.r, 0);
        assert_string_equal(get(&p.ini, "default", "region"), "us-east-1\nx = y\n\nmore");
        assert_string_equal(get(&p.ini, "profile p", "s3"), "\naddressing_style = path\nsignature_version = s3v4");
        assert_string_equal(get(&p.ini, "profile p", "trailing"), "t");    /* trailing empty lines go */
        assert_string_equal(get(&p.ini, "profile p", "region"), "eu-north-1");     /* [DEFAULT] is inherited */
        assert_int_equal(p.ini.n_sections, 2);  /* [DEFAULT] is no section */
        lb_ini_done(&p.ini);
}

static void test_ini_errors(void **state) {
        static const struct {
                const char *text;
                unsigned line;
                const char *error;
        } bad[] = {
                { "key = before any section\n", 1, "a key before any [section]" },
                { "\xef\xbb\xbf[default]\nk=v\n", 1, "byte order mark" },
                { "[default]\nk = v\njust-a-word\n", 3, "expected 'key = value', '[section]' or a comment" },
                { "[default]\n= no key\n", 2, "expected 'key = value'" },
                { "[default]\na = 1\n\nA = 2\n", 4, "a is set twice in [default] (first on line 2)" },
                { "[p]\nk=v\n[q]\n[p]\n", 4, "section [p] already appeared on line 1" },
                { "[default]\nk=v\n[]\n", 3, "expected 'key = value'" },
                { "[default]\ns3 =\n  addressing_style = path\n  oops\n", 4, "the value of s3 starts on the next line" },
                { "[default]\nk=\xff\xfe\n", 2, "not UTF-8 text" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct parsed p;
                parse(bad[i].text, &p);
                if (p.r != -EINVAL || p.line != bad[i].line || !strstr(p.error, bad[i].error))
                        fail_msg("case %zu: r %d, line %u, error '%s'", i, p.r, p.line, p.error);
                assert_int_equal(p.ini.n_sections, 0);  /* nothing handed out */
        }
        /* A NUL byte inside the text. */
        struct lb_ini ini = {};
        unsigned line = 0;
        char error[100];
        assert_int_equal(lb_ini_parse("[d]\nk=a\0b\n", 10, &ini, &line, error, sizeof error), -EINVAL);
        assert_int_equal(line, 2);
        assert_string_equal(error, "a NUL byte");
        /* The line is never echoed: it may be a secret with a typo. */
        struct parsed p;
        parse("[default]\nwJalrXUtnFEMI/K7MDENG\n", &p);
        assert_int_equal(p.r, -EINVAL);
        assert_null(strstr(p.error, "wJalr"));
}

static void test_ini_profiles(void **state) {
        struct parsed p;
        parse("[default]\nk = 1\n"
              "[profile  a]\nk = a\n"
              "[profile \"b c\"]\nk = bc\n"
              "[profile 'x y']\nk = xy\n"
              "[profile e f]\nk = ef\n"
              "[profilex]\nk = px\n"
              "[ profile d ]\nk = d\n"
              "[profile \"unterminated]\nk = u\n"
              "[profile default]\nk = 2\n",
              &p);
        assert_int_equal(p.r, 0);
        const struct lb_ini_section *s;
        assert_non_null(s = lb_ini_profile(&p.ini, "default", true));
        assert_string_equal(lb_ini_get(&p.ini, s, "k")->value, "2");      /* the later of the two wins */
        assert_non_null(s = lb_ini_profile(&p.ini, "a", true));
        assert_string_equal(lb_ini_get(&p.ini, s, "k")->value, "a");
        assert_non_null(s = lb_ini_profile(&p.ini, "b c", true));
        assert_string_equal(lb_ini_get(&p.ini, s, "k")->value, "bc");
        assert_non_null(lb_ini_profile(&p.ini, "x y", true));
        assert_null(lb_ini_profile(&p.ini, "e", true));        /* three words: dropped */
        assert_null(lb_ini_profile(&p.ini, "f", true));
        assert_null(lb_ini_profile(&p.ini, "profilex", true));
        assert_null(lb_ini_profile(&p.ini, "d", true));        /* a leading space: not a profile */
        assert_null(lb_ini_profile(&p.ini, "unterminated", true));
        /* In a credentials file the section name is the profile name. */
        assert_null(lb_ini_profile(&p.ini, "a", false));
        assert_non_null(lb_ini_profile(&p.ini, "profile  a", false));
        assert_non_null(lb_ini_profile(&p.ini, "default", false));
        lb_ini_done(&p.ini);
}

/* ---- the files ---- */

struct fixture {
        char *dir;
        char config[PATH_MAX], credentials[PATH_MAX];
        struct lb_context ctx;
        struct lbt_log log;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(lbt_tmpdir_setup((void **) &f->dir), 0);
        lbt_pathf(f->config, "%s/config", f->dir);
        lbt_pathf(f->credentials, "%s/credentials", f->dir);
        assert_int_equal(lb_context_init(&f->ctx), 0);
        lbt_log_install(&f->ctx, &f->log);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_CONFIG_FILE", f->config, "t"), 0);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_SHARED_CREDENTIALS_FILE", f->credentials, "t"), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        lb_context_done(&f->ctx);
        lbt_log_reset(&f->log);
        assert_int_equal(lbt_tmpdir_teardown((void **) &f->dir), 0);
        free(f);
        return 0;
}

/* The example files of creds.md section 4.6 (the inline-comment trap included). */
static void write_examples(struct fixture *f) {
        lbt_write_text(f->config, "[default]\n"
                                  "region = us-west-2\n"
                                  "\n"
                                  "[profile p1]\n"
                                  "region = eu-west-1\n"
                                  "aws_access_key_id = AKIACONFIGP1\n"
                                  "aws_secret_access_key = cfgsecretp1\n"
                                  "\n"
                                  "[profile onlycfg]\n"
                                  "aws_access_key_id = AKIAONLYCFG\n"
                                  "aws_secret_access_key = s\n"
                                  "aws_session_token = tokcfg\n");
        lbt_write_text(f->credentials, "[default]\n"
                                       "aws_access_key_id = AKIACREDDEFAULT\n"
                                       "aws_secret_access_key = credsecret\n"
                                       "\n"
                                       "[p1]\n"
                                       "aws_access_key_id = AKIACREDP1\n"
                                       "aws_secret_access_key = credsecretp1\n"
                                       "region = ap-south-1\n");
}

/* Loads the profile and its keys: the profile source's result, reason in reason. */
static int keys(struct fixture *f, struct lb_credentials *c, char *reason, size_t size) {
        _cleanup_aws_profile_ struct lb_aws_profile p = {};
        int r = lb_aws_profile_load(&f->ctx, &p, reason, size);
        if (r < 0)
                return r;
        return lb_creds_from_profile(&f->ctx, &p, c, reason, size);
}

static void test_profile_keys(void **state) {
        struct fixture *f = *state;
        write_examples(f);
        struct lb_credentials c = {};
        char reason[512] = "";

        /* default: the credentials file beats the config file. */
        assert_int_equal(keys(f, &c, reason, sizeof reason), 0);
        assert_string_equal(c.access_key_id, "AKIACREDDEFAULT");
        assert_string_equal(c.secret_access_key, "credsecret");
        assert_null(c.session_token);
        assert_int_equal(c.source, LB_CREDS_PROFILE);
        assert_int_equal(c.expiration, 0);
        char want[PATH_MAX + 64];
        lbt_pathf(want, "profile default in %s", f->credentials);
        assert_string_equal(c.origin, want);
        lb_credentials_done(&c);

        assert_int_equal(lb_settings_set(&f->ctx, "AWS_PROFILE", "p1", "t"), 0);
        assert_int_equal(keys(f, &c, reason, sizeof reason), 0);
        assert_string_equal(c.access_key_id, "AKIACREDP1");
        lb_credentials_done(&c);

        assert_int_equal(lb_settings_set(&f->ctx, "AWS_PROFILE", "onlycfg", "t"), 0);
        assert_int_equal(keys(f, &c, reason, sizeof reason), 0);
        assert_string_equal(c.access_key_id, "AKIAONLYCFG");
        assert_string_equal(c.session_token, "tokcfg");
        lbt_pathf(want, "profile onlycfg in %s", f->config);
        assert_string_equal(c.origin, want);
        lb_credentials_done(&c);

        /* A profile named by AWS_PROFILE must exist. */
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_PROFILE", "nope", "t"), 0);
        assert_int_equal(keys(f, &c, reason, sizeof reason), -EINVAL);
        assert_non_null(strstr(reason, "profile nope (AWS_PROFILE) is in neither"));
}

static void test_profile_region(void **state) {
        struct fixture *f = *state;
        write_examples(f);
        char region[32];
        assert_int_equal(lb_aws_profile_region(&f->ctx, region, sizeof region), 0);
        assert_string_equal(region, "us-west-2");
        /* The credentials file's settings go over the config file's, key by key; there is no
         * inline comment, so this one is no region name. */
        lbt_write_text(f->credentials, "[p1]\nregion = ap-south-1          ; NOT a comment\n");
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_PROFILE", "p1", "t"), 0);
        assert_int_equal(lb_aws_profile_region(&f->ctx, region, sizeof region), -EINVAL);
        char where[PATH_MAX + 16];
        lbt_pathf(where, "%s:2: region of profile p1", f->credentials);
        assert_non_null(strstr(lbt_log_text(&f->log), where));
        lbt_write_text(f->credentials, "[p1]\nregion = ap-south-1\n");
        assert_int_equal(lb_aws_profile_region(&f->ctx, region, sizeof region), 0);
        assert_string_equal(region, "ap-south-1");
        lbt_write_text(f->credentials, "[p1]\nk = v\n");
        assert_int_equal(lb_aws_profile_region(&f->ctx, region, sizeof region), 0);
        assert_string_equal(region, "eu-west-1");
        /* No region anywhere. */
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_PROFILE", "onlycfg", "t"), 0);
        assert_int_equal(lb_aws_profile_region(&f->ctx, region, sizeof region), -ENOENT);
}

static void test_profile_missing_files(void **state) {
        struct fixture *f = *state;
        struct lb_credentials c = { .access_key_id = "keep" };
        char reason[1024] = "", want[2 * PATH_MAX + 64];

        assert_int_equal(keys(f, &c, reason, sizeof reason), -ENOKEY);
        lbt_pathf(want, "%s and %s not found", f->credentials, f->config);
        assert_string_equal(reason, want);
        assert_string_equal(c.access_key_id, "keep");

        /* A directory is no file (botocore: os.path.isfile). */
        lbt_pathf(want, "%s/x", f->credentials);
        lbt_write_text(want, "");
        assert_int_equal(keys(f, &c, reason, sizeof reason), -ENOKEY);

        lbt_write_text(f->config, "[default]\nregion = us-east-1\n");
        assert_int_equal(keys(f, &c, reason, sizeof reason), -ENOKEY);
        lbt_pathf(want, "no aws_access_key_id in %s (%s not found)", f->config, f->credentials);
        assert_string_equal(reason, want);

        lbt_write_text(f->config, "[profile other]\nregion = us-east-1\n");
        assert_int_equal(keys(f, &c, reason, sizeof reason), -ENOKEY);
        lbt_pathf(want, "not in %s (%s not found)", f->config, f->credentials);
        assert_string_equal(reason, want);
        assert_string_equal(c.access_key_id, "keep");
}

static void test_profile_bad_keys(void **state) {
        struct fixture *f = *state;
        static const struct {
                const char *credentials;
                const char *error;      /* after "FILE:" */
        } bad[] = {
                { "[default]\naws_access_key_id = AKIA\n", "2: profile default has aws_access_key_id but no aws_secret_access_key" },
                { "[default]\naws_access_key_id = AKIA\naws_secret_access_key =\n", "2: profile default has aws_access_key_id but no" },
                { "[default]\n\naws_access_key_id =\naws_secret_access_key = s\n", "3: aws_access_key_id of profile default is empty" },
                { "[default]\naws_access_key_id = AK IA\naws_secret_access_key = s\n", "2: the access key id of profile default is malformed" },
                { "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\naws_session_token = t t\n", "4: the session token of profile default is malformed" },
                { "[default]\ncredential_process = /bin/creds\n", "2: profile default uses credential_process, which lifeboat does not support" },
                { "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n", "2: profile default uses role_arn" },
                { "[default]\nsource_profile = base\n", "2: profile default uses source_profile" },
                /* An assumed role beats the profile's own keys (botocore): the keys are another
                 * identity, never used instead. */
                { "[default]\naws_access_key_id = AKIABASE\naws_secret_access_key = s\n"
                  "role_arn = arn:aws:iam::123456789012:role/r\nsource_profile = default\n", "4: profile default uses role_arn" },
                { "[default]\nsso_session = corp\n", "2: profile default uses sso_session" },
                { "[default]\nk = v\nk = w\n", "3: k is set twice in [default]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                lbt_write_text(f->credentials, bad[i].credentials);
                struct lb_credentials c = {};
                char reason[1024] = "", want[PATH_MAX + 200];
                lbt_pathf(want, "%s:%s", f->credentials, bad[i].error);
                int r = keys(f, &c, reason, sizeof reason);
                if (r != -EINVAL || !strstr(reason, want))
                        fail_msg("case %zu: %d '%s'", i, r, reason);
                assert_null(c.session_token);
        }
        /* credential_process comes after the credentials file's keys, before the config file's. */
        lbt_write_text(f->credentials, "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s\n");
        lbt_write_text(f->config, "[default]\ncredential_process = /bin/creds\n");
        {
                struct lb_credentials c = {};
                char reason[256];
                assert_int_equal(keys(f, &c, reason, sizeof reason), 0);
                assert_string_equal(c.access_key_id, "AKIAFILE");
                lb_credentials_done(&c);
                lbt_write_text(f->credentials, "[default]\ncredential_process = /bin/creds\n");
                lbt_write_text(f->config, "[default]\naws_access_key_id = AKIACONF\naws_secret_access_key = s\n");
                assert_int_equal(keys(f, &c, reason, sizeof reason), -EINVAL);
                assert_non_null(strstr(reason, "uses credential_process"));
                lbt_write_text(f->config, "");
        }
        /* The legacy token name is read when aws_session_token is not there. */
        lbt_write_text(f->credentials, "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\n"
                                       "aws_security_token = legacy\n");
        struct lb_credentials c = {};
        char reason[256];
        assert_int_equal(keys(f, &c, reason, sizeof reason), 0);
        assert_string_equal(c.session_token, "legacy");
        lb_credentials_done(&c);
        /* A broken config file stops everything, naming its line. */
        lbt_write_text(f->config, "[default]\nregion = us-east-1\nnot a setting\n");
        char want[PATH_MAX + 64];
        lbt_pathf(want, "%s:3: expected 'key = value'", f->config);
        assert_int_equal(keys(f, &c, reason, sizeof reason), -EINVAL);
        assert_non_null(strstr(reason, want));
        assert_null(strstr(lbt_log_text(&f->log), "credsecret"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ini_basics),
                cmocka_unit_test(test_ini_continuations_and_defaults),
                cmocka_unit_test(test_ini_errors),
                cmocka_unit_test(test_ini_profiles),
                cmocka_unit_test_setup_teardown(test_profile_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_profile_region, setup, teardown),
                cmocka_unit_test_setup_teardown(test_profile_missing_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_profile_bad_keys, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
