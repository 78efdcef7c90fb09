/* SPDX-License-Identifier: MIT */
/*
 * The AWS SDKs' shared config and credentials files. The INI dialect follows Python's
 * configparser.RawConfigParser with its defaults (strict, '=' and ':' as delimiters, whole-line
 * '#' and ';' comments, empty lines kept in values) plus botocore's reading of nested values and
 * profile sections, so that a file the AWS CLI reads means the same here, and a file it refuses
 * is refused here too, with FILE:LINE.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/aws/creds-profile.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"

#define AWS_FILE_MAX (1024u * 1024u)
#define PROFILE_NAME_MAX 256

/* ---- the INI dialect ---- */

static void section_done(struct lb_ini_section *s) {
        for (size_t i = 0; i < s->n_entries; i++) {
                free(s->entries[i].key);
                lb_free_secret(s->entries[i].value);     /* a credentials file holds secrets */
        }
        free(s->entries);
        free(s->name);
        *s = (struct lb_ini_section) {};
}

void lb_ini_done(struct lb_ini *ini) {
        for (size_t i = 0; i < ini->n_sections; i++)
                section_done(&ini->sections[i]);
        free(ini->sections);
        section_done(&ini->defaults);
        *ini = (struct lb_ini) {};
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r' || c == '\n';
}

/* [p, p + n) without leading and trailing white space, as *ret_start and the length. */
static size_t strip(const char *p, size_t n, const char **ret_start) {
        while (n > 0 && is_space(*p))
                p++, n--;
        while (n > 0 && is_space(p[n - 1]))
                n--;
        *ret_start = p;
        return n;
}

static struct lb_ini_section *find_section(struct lb_ini *ini, const char *name, size_t n) {
        for (size_t i = 0; i < ini->n_sections; i++)
                if (strlen(ini->sections[i].name) == n && memcmp(ini->sections[i].name, name, n) == 0)
                        return &ini->sections[i];
        return NULL;
}

static struct lb_ini_entry *find_entry(struct lb_ini_section *s, const char *key) {
        for (size_t i = 0; i < s->n_entries; i++)
                if (streq(s->entries[i].key, key))
                        return &s->entries[i];
        return NULL;
}

static int add_section(struct lb_ini *ini, const char *name, size_t n, unsigned line,
                       struct lb_ini_section **ret) {
        struct lb_ini_section *a = realloc(ini->sections, (ini->n_sections + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        ini->sections = a;
        struct lb_ini_section *s = &a[ini->n_sections];
        *s = (struct lb_ini_section) { .name = strndup(name, n), .line = line };
        if (!s->name)
                return -ENOMEM;
        ini->n_sections++;
        *ret = s;
        return 0;
}

static int add_entry(struct lb_ini_section *s, const char *key, size_t key_len, const char *value,
                     size_t value_len, unsigned line, struct lb_ini_entry **ret) {
        struct lb_ini_entry *a = realloc(s->entries, (s->n_entries + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        s->entries = a;
        struct lb_ini_entry e = { .key = strndup(key, key_len), .value = strndup(value, value_len), .line = line };
        if (!e.key || !e.value) {
                free(e.key);
                lb_free_secret(e.value);
                return -ENOMEM;
        }
        for (char *k = e.key; *k; k++)
                *k = (char) tolower((unsigned char) *k);
        a[s->n_entries++] = e;
        *ret = &a[s->n_entries - 1];
        return 0;
}

/* Appends "\n" + [p, p + n) to the value (a continuation line, or "" for an empty one). */
static int append_line(struct lb_ini_entry *e, const char *p, size_t n) {
        size_t old = strlen(e->value);
        char *v = malloc(old + 1 + n + 1);
        if (!v)
                return -ENOMEM;
        memcpy(v, e->value, old);
        v[old] = '\n';
        memcpy(v + old + 1, p, n);
        v[old + 1 + n] = '\0';
        lb_free_secret(e->value);
        e->value = v;
        return 0;
}

/* What configparser does once the file is read: trailing white space (empty continuation lines)
 * goes; botocore then reads a value starting with a line break as nested "key = value" lines. */
static int finish_section(struct lb_ini_section *s, unsigned *ret_line, char *error, size_t size) {
        for (size_t i = 0; i < s->n_entries; i++) {
                struct lb_ini_entry *e = &s->entries[i];
                size_t n = strlen(e->value);
                while (n > 0 && is_space(e->value[n - 1]))
                        e->value[--n] = '\0';
                if (e->value[0] != '\n')
                        continue;
                unsigned line = e->line;
                for (const char *p = e->value + 1; *p; line++) {
                        size_t len = strcspn(p, "\n");
                        const char *t;
                        size_t tn = strip(p, len, &t);
                        if (tn > 0 && !memchr(t, '=', tn)) {
                                *ret_line = line + 1;
                                lb_set_reason(error, size, "the value of %s starts on the next line, so each of its "
                                              "lines must be 'key = value'", e->key);
                                return -EINVAL;
                        }
                        p += len + (p[len] == '\n');
                }
        }
        return 0;
}

struct ini_parser {
        struct lb_ini ini;
        struct lb_ini_section *section;         /* the current one ([DEFAULT] included) */
        struct lb_ini_entry *entry;             /* the last key of the current section */
        size_t indent;                          /* of the last key or section line */
        unsigned line;
};

static int parse_header(struct ini_parser *p, const char *t, size_t n, char *error, size_t size) {
        /* "[" then the text up to the last "]": configparser's greedy \[(?P<header>.+)\] */
        const char *close = NULL;
        for (size_t i = n; i > 2; i--)
                if (t[i - 1] == ']') {
                        close = t + i - 1;
                        break;
                }
        const char *name = t + 1;
        size_t len = (size_t) (close - name);
        p->entry = NULL;
        if (len == strlen("DEFAULT") && memcmp(name, "DEFAULT", len) == 0) {
                p->section = &p->ini.defaults;
                return 0;
        }
        struct lb_ini_section *s = find_section(&p->ini, name, len);
        if (s) {
                lb_set_reason(error, size, "section [%.*s] already appeared on line %u", (int) MIN(len, (size_t) 64),
                              name, s->line);
                return -EINVAL;
        }
        return add_section(&p->ini, name, len, p->line, &p->section);
}

static int parse_option(struct ini_parser *p, const char *t, size_t n, char *error, size_t size) {
        size_t d = 0;
        while (d < n && t[d] != '=' && t[d] != ':')
                d++;
        const char *key;
        size_t key_len = strip(t, d, &key);
        if (d == n || key_len == 0) {
                /* The line is not echoed: it may be a secret with a typo. */
                lb_set_reason(error, size, "expected 'key = value', '[section]' or a comment");
                return -EINVAL;
        }
        const char *value;
        size_t value_len = strip(t + d + 1, n - d - 1, &value);

        _cleanup_free_ char *lowered = strndup(key, key_len);
        if (!lowered)
                return -ENOMEM;
        for (char *k = lowered; *k; k++)
                *k = (char) tolower((unsigned char) *k);
        const struct lb_ini_entry *dup = find_entry(p->section, lowered);
        if (dup) {
                lb_set_reason(error, size, "%.64s is set twice in [%.64s] (first on line %u)", lowered,
                              p->section->name ? p->section->name : "DEFAULT", dup->line);
                return -EINVAL;
        }
        return add_entry(p->section, key, key_len, value, value_len, p->line, &p->entry);
}

static int parse_line(struct ini_parser *p, const char *line, size_t n, char *error, size_t size) {
        if (!lb_utf8_valid(line, n)) {
                lb_set_reason(error, size, "%s", memchr(line, '\0', n) ? "a NUL byte" : "not UTF-8 text");
                return -EINVAL;
        }
        const char *t;
        size_t tn = strip(line, n, &t);
        if (tn > 0 && (t[0] == '#' || t[0] == ';'))
                return 0;       /* a comment: neither ends nor extends a value */
        if (tn == 0) {
                /* An empty line inside a value is kept (trailing ones go at the end). */
                return p->entry ? append_line(p->entry, "", 0) : 0;
        }
        size_t indent = (size_t) (t - line);
        if (p->entry && indent > p->indent)
                return append_line(p->entry, t, tn);

        p->indent = indent;
        if (t[0] == '[' && tn >= 3 && memchr(t + 2, ']', tn - 2))
                return parse_header(p, t, tn, error, size);
        if (!p->section) {
                lb_set_reason(error, size, "a key before any [section]%s",
                              lb_startswith(t, "\xef\xbb\xbf") ? " (the file starts with a byte order mark)" : "");
                return -EINVAL;
        }
        return parse_option(p, t, tn, error, size);
}

int lb_ini_parse(const char *text, size_t len, struct lb_ini *ret, unsigned *ret_line, char *error, size_t size) {
        struct ini_parser p = {};
        int r = 0;

        for (size_t pos = 0; pos < len;) {
                size_t end = pos;
                while (end < len && text[end] != '\n' && text[end] != '\r')
                        end++;
                p.line++;
                r = parse_line(&p, text + pos, end - pos, error, size);
                if (r < 0)
                        break;
                if (end < len && text[end] == '\r' && end + 1 < len && text[end + 1] == '\n')
                        end++;
                pos = end + 1;
        }
        for (size_t i = 0; r >= 0 && i <= p.ini.n_sections; i++)
                r = finish_section(i < p.ini.n_sections ? &p.ini.sections[i] : &p.ini.defaults, &p.line, error, size);
        if (r < 0) {
                if (ret_line)
                        *ret_line = p.line;
                lb_ini_done(&p.ini);
                return r;
        }
        *ret = p.ini;
        return 0;
}

const struct lb_ini_entry *lb_ini_get(const struct lb_ini *ini, const struct lb_ini_section *section, const char *key) {
        if (section)
                for (size_t i = 0; i < section->n_entries; i++)
                        if (streq(section->entries[i].key, key))
                                return &section->entries[i];
        for (size_t i = 0; i < ini->defaults.n_entries; i++)
                if (streq(ini->defaults.entries[i].key, key))
                        return &ini->defaults.entries[i];
        return NULL;
}

/*
 * shlex.split(s) as botocore applies it to a config file's section name: white space separates
 * words, '...' is literal, "..." allows \" and \\, a backslash outside quotes escapes the next
 * character. Returns the number of words (-1 when a quote is not closed or a backslash ends the
 * text) and copies the second word into buf (cut to fit).
 */
static int shell_words(const char *s, char *buf, size_t size) {
        int words = 0;
        size_t out = 0;
        bool in_word = false;
        if (size > 0)
                buf[0] = '\0';

        for (const char *p = s; *p; p++) {
                char c = *p;
                if (is_space(c)) {
                        in_word = false;
                        continue;
                }
                if (!in_word) {
                        in_word = true;
                        words++;
                }
                char quote = (c == '\'' || c == '"') ? c : 0;
                if (!quote) {
                        if (c == '\\' && !*++p)
                                return -1;
                        if (words == 2 && out + 1 < size)
                                buf[out++] = *p;
                        continue;
                }
                for (p++;; p++) {
                        if (!*p)
                                return -1;
                        if (*p == quote)
                                break;
                        if (quote == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                                p++;
                        if (words == 2 && out + 1 < size)
                                buf[out++] = *p;
                }
        }
        if (size > 0)
                buf[MIN(out, size - 1)] = '\0';
        return words;
}

const struct lb_ini_section *lb_ini_profile(const struct lb_ini *ini, const char *profile, bool config_file) {
        const struct lb_ini_section *found = NULL;
        for (size_t i = 0; i < ini->n_sections; i++) {
                const struct lb_ini_section *s = &ini->sections[i];
                if (!config_file) {
                        if (streq(s->name, profile))
                                return s;
                        continue;
                }
                char name[PROFILE_NAME_MAX];
                if (lb_startswith(s->name, "profile")) {
                        if (shell_words(s->name, name, sizeof name) == 2 && streq(name, profile))
                                found = s;      /* the later section wins, as in botocore */
                } else if (streq(s->name, "default") && streq(profile, "default"))
                        found = s;
        }
        return found;
}

/* ---- the two files ---- */

static void aws_file_done(struct lb_aws_file *f) {
        free(f->path);
        lb_ini_done(&f->ini);
        *f = (struct lb_aws_file) {};
}

void lb_aws_profile_done(struct lb_aws_profile *p) {
        free(p->name);
        aws_file_done(&p->config);
        aws_file_done(&p->credentials);
        *p = (struct lb_aws_profile) {};
}

/* The setting, else ~/.aws/NAME with the home directory of $HOME or, without it, of the user. */
static int file_path(const char *setting, const char *name, char **ret) {
        if (!isempty(setting)) {
                *ret = strdup(setting);
                return *ret ? 0 : -ENOMEM;
        }
        const char *home = getenv("HOME");
        if (isempty(home)) {
                struct passwd *pw = getpwuid(geteuid());
                home = pw ? pw->pw_dir : NULL;
        }
        if (isempty(home))
                home = "/";
        const char *sep = lb_endswith(home, "/") ? "" : "/";
        return asprintf(ret, "%s%s.aws/%s", home, sep, name) < 0 ? -ENOMEM : 0;
}

static int aws_file_load(struct lb_aws_file *f, const char *setting, const char *name, char *reason, size_t size) {
        int r = file_path(setting, name, &f->path);
        if (r < 0)
                return r;
        struct stat st;
        if (stat(f->path, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;       /* as in botocore: missing, or not a file, is empty */

        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        r = lb_read_file(f->path, AWS_FILE_MAX, &data, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                lb_set_reason(reason, size, "cannot read %s: %s", f->path,
                              r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                return -EINVAL;
        }
        char error[200] = "";
        unsigned line = 0;
        r = lb_ini_parse(data, len, &f->ini, &line, error, sizeof error);
        explicit_bzero(data, len);
        if (r == -EINVAL) {
                lb_set_reason(reason, size, "%s:%u: %s", f->path, line, error);
                return r;
        }
        if (r < 0)
                return r;
        f->found = true;
        return 0;
}

int lb_aws_profile_load(struct lb_context *ctx, struct lb_aws_profile *ret, char *reason, size_t size) {
        const struct lb_settings *s = &ctx->settings;
        _cleanup_aws_profile_ struct lb_aws_profile p = { .named = !isempty(s->profile) };

        p.name = strdup(p.named ? s->profile : "default");
        if (!p.name)
                return -ENOMEM;
        int r = aws_file_load(&p.credentials, s->shared_credentials_file, "credentials", reason, size);
        if (r >= 0)
                r = aws_file_load(&p.config, s->aws_config_file, "config", reason, size);
        if (r < 0)
                return r;
        p.credentials.section = lb_ini_profile(&p.credentials.ini, p.name, false);
        p.config.section = lb_ini_profile(&p.config.ini, p.name, true);
        if (p.named && !p.credentials.section && !p.config.section) {
                lb_set_reason(reason, size, "profile %s (AWS_PROFILE) is in neither %s nor %s", p.name,
                              p.credentials.path, p.config.path);
                return -EINVAL;
        }
        lb_debug(ctx, "AWS profile %s: %s %s, %s %s", p.name, p.credentials.path,
                 !p.credentials.found ? "not found" : p.credentials.section ? "has it" : "does not have it",
                 p.config.path, !p.config.found ? "not found" : p.config.section ? "has it" : "does not have it");
        *ret = p;
        p = (struct lb_aws_profile) {};
        return 0;
}

static const struct lb_ini_entry *file_get(const struct lb_aws_file *f, const char *key) {
        /* [DEFAULT] applies to the sections of a file, not to a profile the file lacks. */
        if (!f->found || !f->section)
                return NULL;
        return lb_ini_get(&f->ini, f->section, key);
}

const char *lb_aws_profile_get(const struct lb_aws_profile *p, const char *key, const struct lb_aws_file **ret_file,
                               unsigned *ret_line) {
        const struct lb_aws_file *files[] = { &p->credentials, &p->config };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                const struct lb_ini_entry *e = file_get(files[i], key);
                if (e) {
                        if (ret_file)
                                *ret_file = files[i];
                        if (ret_line)
                                *ret_line = e->line;
                        return e->value;
                }
        }
        return NULL;
}

int lb_aws_profile_region(struct lb_context *ctx, char *buf, size_t size) {
        _cleanup_aws_profile_ struct lb_aws_profile p = {};
        char reason[512] = "";
        int r = lb_aws_profile_load(ctx, &p, reason, sizeof reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                lb_err(ctx, "%s", reason);
                return r;
        }
        const struct lb_aws_file *f = NULL;
        unsigned line = 0;
        const char *region = lb_aws_profile_get(&p, "region", &f, &line);
        if (isempty(region))
                return -ENOENT;
        if (!lb_region_valid(region)) {
                char echo[80];
                lb_err(ctx, "%s:%u: region of profile %s is not a region name: '%s'", f->path, line, p.name,
                       lb_cescape(region, echo, sizeof echo));
                return -EINVAL;
        }
        if (lb_strscpy(buf, size, region) < 0)
                return -ENOBUFS;
        lb_debug(ctx, "Region %s from profile %s in %s", region, p.name, f->path);
        return 0;
}

/* ---- the credential source ---- */

/* A key the profile has that asks for a way of getting credentials lifeboat does not have. */
/* The first of keys the profile sets, NULL when none. */
static const char *first_key(const struct lb_aws_profile *p, const char *const *keys, size_t n,
                             const struct lb_aws_file **ret_file, unsigned *ret_line) {
        for (size_t i = 0; i < n; i++)
                if (lb_aws_profile_get(p, keys[i], ret_file, ret_line))
                        return keys[i];
        return NULL;
}

static int refuse_unsupported(const struct lb_aws_profile *p, const struct lb_aws_file *f, unsigned line,
                              const char *key, char *reason, size_t size) {
        lb_set_reason(reason, size, "%s:%u: profile %s uses %s, which lifeboat does not support (give the "
                      "profile static keys, or use web identity, container credentials or the instance role)",
                      f->path, line, p->name, key);
        return -EINVAL;
}

/* Why the profile has no keys, naming the files it was looked for in. */
static void describe_absence(const struct lb_aws_profile *p, char *reason, size_t size) {
        const struct lb_aws_file *c = &p->credentials, *f = &p->config;
        if (!c->found && !f->found) {
                lb_set_reason(reason, size, "%s and %s not found", c->path, f->path);
                return;
        }
        bool in_c = c->section, in_f = f->section, anywhere = in_c || in_f;
        /* The files holding the profile, else the files found. */
        const struct lb_aws_file *a = anywhere ? (in_c ? c : f) : (c->found ? c : f);
        const struct lb_aws_file *b = anywhere ? (in_c && in_f ? f : NULL) : (c->found && f->found ? f : NULL);
        const struct lb_aws_file *missing = !c->found ? c : !f->found ? f : NULL;
        lb_set_reason(reason, size, "%s %s%s%s%s%s%s", anywhere ? "no aws_access_key_id in" : "not in",
                      a->path, b ? " or " : "", b ? b->path : "", missing ? " (" : "", missing ? missing->path : "",
                      missing ? " not found)" : "");
}

/* The keys of one file's section of the profile. */
static int keys_from_file(const struct lb_aws_profile *p, const struct lb_aws_file *f, struct lb_credentials *ret,
                          char *reason, size_t size) {
        const struct lb_ini_entry *key = lb_ini_get(&f->ini, f->section, "aws_access_key_id");
        const struct lb_ini_entry *secret = lb_ini_get(&f->ini, f->section, "aws_secret_access_key");
        const struct lb_ini_entry *token = lb_ini_get(&f->ini, f->section, "aws_session_token");
        if (!token || isempty(token->value))
                token = lb_ini_get(&f->ini, f->section, "aws_security_token");

        if (isempty(key->value)) {
                lb_set_reason(reason, size, "%s:%u: aws_access_key_id of profile %s is empty", f->path, key->line,
                              p->name);
                return -EINVAL;
        }
        if (!secret || isempty(secret->value)) {
                lb_set_reason(reason, size, "%s:%u: profile %s has aws_access_key_id but no aws_secret_access_key",
                              f->path, key->line, p->name);
                return -EINVAL;
        }
        struct lb_credentials c;
        const char *bad = "?";
        int r = lb_credentials_set(&c, key->value, secret->value, token ? token->value : NULL, 0, &bad);
        if (r == -EINVAL) {
                unsigned line = streq(bad, "access key id") ? key->line
                              : streq(bad, "secret access key") ? secret->line : token->line;
                lb_set_reason(reason, size, "%s:%u: the %s of profile %s is malformed (expected printable characters "
                              "without spaces)", f->path, line, bad, p->name);
                return r;
        }
        if (r < 0)
                return r;
        c.source = LB_CREDS_PROFILE;
        lb_utf8_snprintf(c.origin, sizeof c.origin, "profile %s in %s", p->name, f->path);
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}

int lb_creds_from_profile(struct lb_context *ctx, const struct lb_aws_profile *p, struct lb_credentials *ret,
                          char *reason, size_t size) {
        /* botocore's order: an assumed role or SSO beats the profile's static keys (a profile
         * with keys and role_arn runs as the role: using the keys would be another identity),
         * then the credentials file's keys, then credential_process, then the config file's keys. */
        static const char *const before_keys[] = {
                "role_arn",     /* without web_identity_token_file: the web identity source took that */
                "sso_session", "sso_start_url",
        };
        static const char *const before_config_keys[] = { "credential_process" };
        static const char *const instead_of_keys[] = { "source_profile", "credential_source" };
        const struct lb_aws_file *f = NULL;
        unsigned line = 0;
        const char *key = first_key(p, before_keys, ELEMENTSOF(before_keys), &f, &line);
        if (key)
                return refuse_unsupported(p, f, line, key, reason, size);
        if (file_get(&p->credentials, "aws_access_key_id"))
                return keys_from_file(p, &p->credentials, ret, reason, size);
        key = first_key(p, before_config_keys, ELEMENTSOF(before_config_keys), &f, &line);
        if (key)
                return refuse_unsupported(p, f, line, key, reason, size);
        if (file_get(&p->config, "aws_access_key_id"))
                return keys_from_file(p, &p->config, ret, reason, size);
        key = first_key(p, instead_of_keys, ELEMENTSOF(instead_of_keys), &f, &line);
        if (key)
                return refuse_unsupported(p, f, line, key, reason, size);
        describe_absence(p, reason, size);
        return -ENOKEY;
}
