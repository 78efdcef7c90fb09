/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/aws/http.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/fluentd/rpc.h"
#include "lifeboat/fluentd/snippet.h"
#include "testutil.h"

#define VOL "vol-0abc12345"
#define OWNER "i-0123456789abcdef0"

static const struct lb_fluentd_vars good_vars = {
        .volume_id = VOL,
        .mount_path = "/var/lib/lifeboat/recovery/" VOL,
        .previous_owner = OWNER,
        .group = "prod-cluster",
};

/* ---- files in the temporary directory ---- */

static void make_file(const char *dir, const char *name, const char *content) {
        char path[PATH_MAX];
        assert_int_equal(lb_snprintf(path, sizeof path, "%s/%s", dir, name), 0);
        assert_int_equal(lb_write_file_atomic(path, content, strlen(content), 0644), 0);
}

static bool exists_in(const char *dir, const char *name) {
        char path[PATH_MAX];
        struct stat st;
        assert_int_equal(lb_snprintf(path, sizeof path, "%s/%s", dir, name), 0);
        return lstat(path, &st) == 0;
}

/* ---- rendering ---- */

static char *render_ok(const char *tmpl, const struct lb_fluentd_vars *v) {
        char reason[256] = "";
        char *text = NULL;
        int r = lb_fluentd_render(tmpl, strlen(tmpl), v, &text, reason, sizeof reason);
        if (r < 0)
                print_error("render failed: %s\n", reason);
        assert_int_equal(r, 0);
        assert_non_null(text);
        return text;
}

static void test_render_placeholders(void **state) {
        _cleanup_free_ char *t = render_ok(
                "id={{volume_id}} at {{ mount_path }}/s3\n"
                "owner={{previous_owner}} group={{\tgroup }}\n"
                "again {{volume_id}}{{volume_id}}\n"
                "ruby \"#{ENV['LOG_BUCKET']}\" %{path} ${chunk_id} }} {x}\n",
                &good_vars);
        assert_string_equal(t,
                "id=" VOL " at /var/lib/lifeboat/recovery/" VOL "/s3\n"
                "owner=" OWNER " group=prod-cluster\n"
                "again " VOL VOL "\n"
                "ruby \"#{ENV['LOG_BUCKET']}\" %{path} ${chunk_id} }} {x}\n");
}

static void test_render_unknown_owner_and_group(void **state) {
        struct lb_fluentd_vars v = good_vars;
        v.previous_owner = NULL;
        v.group = "";
        _cleanup_free_ char *t = render_ok("[{{previous_owner}}][{{group}}]", &v);
        assert_string_equal(t, "[][]");

        _cleanup_free_ char *empty = render_ok("", &good_vars);
        assert_string_equal(empty, "");
}

static void test_render_unknown_placeholder(void **state) {
        const char *tmpl = "line one\npath {{mount_path}}/{{volume}}\n";
        char reason[256] = "";
        char *text = NULL;
        assert_int_equal(lb_fluentd_render(tmpl, strlen(tmpl), &good_vars, &text, reason, sizeof reason), -EINVAL);
        assert_null(text);
        assert_non_null(strstr(reason, "{{volume}}"));
        assert_non_null(strstr(reason, "line 2"));

        const char *empty = "{{}}";
        assert_int_equal(lb_fluentd_render(empty, strlen(empty), &good_vars, &text, reason, sizeof reason), -EINVAL);
        assert_non_null(strstr(reason, "unknown placeholder"));
}

static void test_render_unterminated(void **state) {
        static const char *const bad[] = {
                "path {{mount_path",
                "path {{mount_path}",
                "a\nb\npath {{mount_path\n}}\n",
                "{{",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char reason[256] = "";
                char *text = NULL;
                assert_int_equal(lb_fluentd_render(bad[i], strlen(bad[i]), &good_vars, &text, reason, sizeof reason),
                                 -EINVAL);
                assert_null(text);
                assert_non_null(strstr(reason, "unterminated"));
        }
        char reason[256] = "";
        char *text = NULL;
        const char *t = "a\nb\npath {{mount_path\n}}\n";
        assert_int_equal(lb_fluentd_render(t, strlen(t), &good_vars, &text, reason, sizeof reason), -EINVAL);
        assert_non_null(strstr(reason, "line 3"));

        /* A NUL inside the buffer is refused too. */
        const char nul[] = "a\0{{volume_id}}";
        assert_int_equal(lb_fluentd_render(nul, sizeof nul - 1, &good_vars, &text, reason, sizeof reason), -EINVAL);
}

static void expect_vars_rejected(const struct lb_fluentd_vars *v, const char *field) {
        char reason[256] = "";
        char *text = NULL;
        assert_int_equal(lb_fluentd_render("{{volume_id}}", 13, v, &text, reason, sizeof reason), -EINVAL);
        assert_null(text);
        assert_non_null(strstr(reason, field));
        /* The message itself never carries the injected line break. */
        assert_null(strchr(reason, '\n'));
        assert_int_equal(lb_fluentd_vars_validate(v, NULL, 0), -EINVAL);
}

static void test_render_rejects_injection(void **state) {
        static const char *const bad_volumes[] = {
                "vol-0abc12345\n</match>", "vol-0abc12345 ", "vol-0ABC12345", "vol-0abc\"", "#{`id`}", "", "vol-",
        };
        static const char *const bad_paths[] = {
                "/mnt/a b", "/mnt/x\n</match>\n<match **>", "/mnt/\"x", "/mnt/'x", "/mnt/#{ENV}", "/mnt/x#y",
                "/mnt/<x>", "/mnt/{x}", "/mnt/$x", "/mnt/@x", "/mnt/x\\y", "/mnt/%Y", "/mnt/*", "relative/path",
                "", "/", "/mnt/../etc", "/mnt/./x", "/mnt//x", "/mnt/x/", "/mnt/\tx", "/mnt/\x7f", "/mnt/\xc3\xa9",
        };
        static const char *const bad_owners[] = {
                "i-0123456789abcdef0\n", "i-\"x", "bob", "i-0123 456789", "#{ENV}",
        };
        static const char *const bad_groups[] = {
                "prod\n<match **>", "a b", "#{ENV['X']}", "x'y", "a$b", "a@b", "a<b", "a>b", "a\"b", "a{b", "a/b",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad_volumes); i++) {
                struct lb_fluentd_vars v = good_vars;
                v.volume_id = bad_volumes[i];
                expect_vars_rejected(&v, "volume_id");
        }
        struct lb_fluentd_vars nullvol = good_vars;
        nullvol.volume_id = NULL;
        expect_vars_rejected(&nullvol, "volume_id");
        for (size_t i = 0; i < ELEMENTSOF(bad_paths); i++) {
                struct lb_fluentd_vars v = good_vars;
                v.mount_path = bad_paths[i];
                expect_vars_rejected(&v, "mount_path");
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_owners); i++) {
                struct lb_fluentd_vars v = good_vars;
                v.previous_owner = bad_owners[i];
                expect_vars_rejected(&v, "previous_owner");
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_groups); i++) {
                struct lb_fluentd_vars v = good_vars;
                v.group = bad_groups[i];
                expect_vars_rejected(&v, "group");
        }
        char long_group[300];
        memset(long_group, 'g', sizeof long_group - 1);
        long_group[sizeof long_group - 1] = '\0';
        struct lb_fluentd_vars v = good_vars;
        v.group = long_group;
        expect_vars_rejected(&v, "group");

        /* The good values really pass, including the odd but harmless ones. */
        v = good_vars;
        v.mount_path = "/srv/lb_rec.1/vol-0abc12345";
        v.group = "team.a:prod_1-x";
        assert_int_equal(lb_fluentd_vars_validate(&v, NULL, 0), 0);
}

static void test_render_packaged_template(void **state) {
        _cleanup_free_ char *tmpl = NULL;
        size_t len = 0;
        char path[PATH_MAX];
        assert_int_equal(lb_snprintf(path, sizeof path, "%s/packaging/fluentd/recovery.conf.in", LB_SOURCE_DIR), 0);
        assert_int_equal(lb_read_file(path, LB_FLUENTD_TEMPLATE_MAX, &tmpl, &len), 0);
        char reason[256] = "";
        _cleanup_free_ char *text = NULL;
        assert_int_equal(lb_fluentd_render(tmpl, len, &good_vars, &text, reason, sizeof reason), 0);
        assert_null(strstr(text, "{{"));
        assert_non_null(strstr(text, "\n<label @LIFEBOAT_" VOL ">\n"));
        assert_non_null(strstr(text, "\n  <match **>\n"));
        assert_non_null(strstr(text, "\n    @type s3\n"));
        assert_non_null(strstr(text, "\n    @id lifeboat_" VOL "_s3\n"));
        assert_non_null(strstr(text, "\n    s3_bucket my-log-bucket\n"));
        assert_non_null(strstr(text, "\n    s3_region us-east-1\n"));
        assert_non_null(strstr(text, "\n    path logs/${tag}/%Y/%m/%d/\n"));
        assert_non_null(strstr(text, "\n    store_as gzip\n"));
        assert_non_null(strstr(text, "\n    <format>\n      @type json\n    </format>\n"));
        assert_non_null(strstr(text,
                "\n    s3_object_key_format %{path}%{time_slice}_${chunk_id}.%{file_extension}\n"));
        assert_non_null(strstr(text, "\n    check_object false\n"));
        assert_non_null(strstr(text, "\n    <buffer tag,time>\n      @type file\n"));
        assert_non_null(strstr(text, "\n      path /var/lib/lifeboat/recovery/" VOL "/s3\n"));
        static const char *const settings[] = {
                "timekey 3600", "timekey_use_utc true", "flush_mode interval", "flush_interval 1s", "flush_thread_burst_interval 0.1",
                "queued_chunks_limit_size 64", "flush_at_shutdown true", "retry_forever true",
                "retry_max_interval 30s",
        };
        for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                char line[128];
                assert_int_equal(lb_snprintf(line, sizeof line, "\n      %s\n", settings[i]), 0);
                assert_non_null(strstr(text, line));
        }
        assert_non_null(strstr(text, "\n    </buffer>\n  </match>\n</label>\n"));
        /* Nothing lazy was copied (the comments may mention it; no setting does). */
        assert_null(strstr(text, "\n      flush_mode lazy"));
        assert_null(strstr(text, "\n      timekey_wait"));
}

/* ---- snippet files ---- */

static void test_snippet_write_and_prune(void **state) {
        const char *tmp = *state;
        char conf[PATH_MAX], path[PATH_MAX];
        assert_int_equal(lb_snprintf(conf, sizeof conf, "%s/recovery.d", tmp), 0);

        assert_int_equal(lb_fluentd_snippet_path(conf, "vol-aaaa1111", path, sizeof path), 0);
        assert_true(lb_endswith(path, "/recovery.d/vol-aaaa1111.conf"));
        assert_int_equal(lb_fluentd_snippet_path(conf, "../etc/passwd", path, sizeof path), -EINVAL);
        assert_int_equal(lb_fluentd_write_snippet(conf, "vol-../x", "x", 1), -EINVAL);

        /* Written (the directory is created), then unchanged, then changed. */
        assert_int_equal(lb_fluentd_write_snippet(conf, "vol-aaaa1111", "one\n", 4), 1);
        assert_int_equal(lb_fluentd_write_snippet(conf, "vol-aaaa1111", "one\n", 4), 0);
        assert_int_equal(lb_fluentd_write_snippet(conf, "vol-aaaa1111", "one!\n", 5), 1);
        assert_int_equal(lb_fluentd_write_snippet(conf, "vol-aaaa1111", "one", 3), 1);
        assert_int_equal(lb_fluentd_write_snippet(conf, "vol-bbbb2222", "two\n", 4), 1);
        assert_int_equal(lb_fluentd_write_snippet(conf, "vol-cccc3333", "three\n", 6), 1);

        _cleanup_free_ char *data = NULL;
        assert_int_equal(lb_fluentd_snippet_path(conf, "vol-aaaa1111", path, sizeof path), 0);
        assert_int_equal(lb_read_file(path, 100, &data, NULL), 0);
        assert_string_equal(data, "one");
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        /* Files that are not ours. */
        make_file(conf, "live.conf", "x");
        make_file(conf, "vol-aaaa1111.conf.bak", "x");
        make_file(conf, "notes-vol-bbbb2222.conf", "x");
        make_file(conf, "vol-.conf", "x");
        char sub[PATH_MAX];
        assert_int_equal(lb_snprintf(sub, sizeof sub, "%s/vol-dddd4444.conf", conf), 0);
        assert_int_equal(mkdir(sub, 0755), 0);

        const char *const keep[] = { "vol-aaaa1111", "vol-eeee5555", NULL };
        assert_int_equal(lb_fluentd_prune_snippets(conf, keep), 2);
        assert_true(exists_in(conf, "vol-aaaa1111.conf"));
        assert_false(exists_in(conf, "vol-bbbb2222.conf"));
        assert_false(exists_in(conf, "vol-cccc3333.conf"));
        assert_true(exists_in(conf, "live.conf"));
        assert_true(exists_in(conf, "vol-aaaa1111.conf.bak"));
        assert_true(exists_in(conf, "notes-vol-bbbb2222.conf"));
        assert_true(exists_in(conf, "vol-.conf"));
        assert_true(exists_in(conf, "vol-dddd4444.conf"));

        /* Nothing more to do; then keep nothing. */
        assert_int_equal(lb_fluentd_prune_snippets(conf, keep), 0);
        assert_int_equal(lb_fluentd_prune_snippets(conf, NULL), 1);
        assert_false(exists_in(conf, "vol-aaaa1111.conf"));
        assert_true(exists_in(conf, "live.conf"));

        /* A missing directory has nothing to prune. */
        char missing[PATH_MAX];
        assert_int_equal(lb_snprintf(missing, sizeof missing, "%s/none", tmp), 0);
        assert_int_equal(lb_fluentd_prune_snippets(missing, NULL), 0);
}

static void test_install_snippet(void **state) {
        const char *tmp = *state;
        char tmpl[PATH_MAX], conf[PATH_MAX], path[PATH_MAX], reason[256] = "";
        assert_int_equal(lb_snprintf(conf, sizeof conf, "%s/etc/fluent/recovery.d", tmp), 0);
        make_file(tmp, "t.conf.in", "<buffer>\n  path {{mount_path}}/s3\n</buffer> # {{volume_id}}\n");
        assert_int_equal(lb_snprintf(tmpl, sizeof tmpl, "%s/t.conf.in", tmp), 0);

        assert_int_equal(lb_fluentd_install_snippet(tmpl, conf, &good_vars, path, sizeof path, reason, sizeof reason), 1);
        assert_true(lb_endswith(path, "/etc/fluent/recovery.d/" VOL ".conf"));
        _cleanup_free_ char *data = NULL;
        assert_int_equal(lb_read_file(path, 4096, &data, NULL), 0);
        assert_string_equal(data, "<buffer>\n  path /var/lib/lifeboat/recovery/" VOL "/s3\n</buffer> # " VOL "\n");
        assert_int_equal(lb_fluentd_install_snippet(tmpl, conf, &good_vars, NULL, 0, reason, sizeof reason), 0);

        /* A bad template or value writes nothing. */
        make_file(tmp, "bad.conf.in", "path {{mount}}\n");
        assert_int_equal(lb_snprintf(tmpl, sizeof tmpl, "%s/bad.conf.in", tmp), 0);
        struct lb_fluentd_vars v = good_vars;
        v.volume_id = "vol-0fff12345";
        assert_int_equal(lb_fluentd_install_snippet(tmpl, conf, &v, NULL, 0, reason, sizeof reason), -EINVAL);
        assert_non_null(strstr(reason, "{{mount}}"));
        assert_false(exists_in(conf, "vol-0fff12345.conf"));

        assert_int_equal(lb_snprintf(tmpl, sizeof tmpl, "%s/missing.conf.in", tmp), 0);
        assert_int_equal(lb_fluentd_install_snippet(tmpl, conf, &v, NULL, 0, reason, sizeof reason), -ENOENT);
        assert_non_null(strstr(reason, "missing.conf.in"));
}

/* ---- recovery path versus live path ---- */

static void test_recovery_path_check(void **state) {
        const char *tmp = *state;
        char live[PATH_MAX], rec[PATH_MAX], p[PATH_MAX], q[PATH_MAX];

        assert_int_equal(lb_snprintf(live, sizeof live, "%s/buffer", tmp), 0);
        assert_int_equal(lb_snprintf(p, sizeof p, "%s/buffer/s3", tmp), 0);
        assert_int_equal(lb_mkdir_p(p, 0755), 0);
        assert_int_equal(lb_snprintf(rec, sizeof rec, "%s/recovery/vol-0abc12345", tmp), 0);
        assert_int_equal(lb_mkdir_p(rec, 0755), 0);

        /* Apart. */
        assert_int_equal(lb_fluentd_check_recovery_path(rec, live), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(rec, p), 0);
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/buffer2", tmp), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(q, live), 0); /* a string prefix is not a parent */
        assert_int_equal(lb_fluentd_check_recovery_path(rec, NULL), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(rec, ""), 0);

        /* The same, inside, or containing it. */
        assert_int_equal(lb_fluentd_check_recovery_path(live, live), -EBUSY);
        assert_int_equal(lb_fluentd_check_recovery_path(p, live), -EBUSY);
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/buffer/s3/not/yet", tmp), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(q, live), -EBUSY);
        assert_int_equal(lb_fluentd_check_recovery_path(tmp, live), -EBUSY);
        assert_int_equal(lb_fluentd_check_recovery_path("/", live), -EBUSY);

        /* ".." resolved before comparing. */
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/recovery/../buffer/s3", tmp), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(q, live), -EBUSY);
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/recovery/new/../../buffer", tmp), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(q, live), -EBUSY);
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/buffer/../recovery/vol-0abc12345", tmp), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(q, live), 0);

        /* Symlinks resolved, in either path. */
        char link[PATH_MAX];
        assert_int_equal(lb_snprintf(link, sizeof link, "%s/recovery/vol-0fff12345", tmp), 0);
        assert_int_equal(symlink(p, link), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(link, live), -EBUSY);
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/s3", link), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(q, live), -EBUSY);
        char live_link[PATH_MAX];
        assert_int_equal(lb_snprintf(live_link, sizeof live_link, "%s/live-link", tmp), 0);
        assert_int_equal(symlink(rec, live_link), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(rec, live_link), -EBUSY);
        assert_int_equal(lb_fluentd_check_recovery_path(live, live_link), 0);

        /* A dangling symlink cannot be judged; relative paths are refused. */
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/dangling", tmp), 0);
        assert_int_equal(symlink("/nonexistent-lifeboat-target", q), 0);
        assert_int_equal(lb_snprintf(q, sizeof q, "%s/dangling/s3", tmp), 0);
        assert_int_equal(lb_fluentd_check_recovery_path(q, live), -ENOENT);
        assert_int_equal(lb_fluentd_check_recovery_path("recovery/vol-x", live), -EINVAL);
}

/* ---- RPC ---- */

static void test_rpc_check_answer(void **state) {
        char reason[256] = "";
        const char *ok = "{\"ok\":true}";
        assert_int_equal(lb_fluentd_rpc_check_answer(200, ok, strlen(ok), reason, sizeof reason), 0);
        const char *ok2 = "{ \"ok\" : true, \"extra\": 1 }\n";
        assert_int_equal(lb_fluentd_rpc_check_answer(200, ok2, strlen(ok2), reason, sizeof reason), 0);

        assert_int_equal(lb_fluentd_rpc_check_answer(500, ok, strlen(ok), reason, sizeof reason), -EPROTO);
        assert_non_null(strstr(reason, "500"));
        const char *err = "{\"message \":\"Internal Server Error\",\"error\":\"boom\",\"ok\":false}";
        assert_int_equal(lb_fluentd_rpc_check_answer(500, err, strlen(err), reason, sizeof reason), -EPROTO);
        assert_non_null(strstr(reason, "boom"));
        assert_int_equal(lb_fluentd_rpc_check_answer(200, err, strlen(err), reason, sizeof reason), -EBADMSG);
        assert_non_null(strstr(reason, "boom"));

        static const char *const bad[] = {
                "", "ok", "true", "[true]", "{\"ok\":\"true\"}", "{\"ok\":1}", "{\"ok\":false}", "{}", "{\"ok\":true",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(lb_fluentd_rpc_check_answer(200, bad[i], strlen(bad[i]), reason, sizeof reason),
                                 -EBADMSG);
        assert_int_equal(lb_fluentd_rpc_check_answer(200, NULL, 0, reason, sizeof reason), -EBADMSG);
        assert_int_equal(lb_fluentd_rpc_check_answer(404, NULL, 0, NULL, 0), -EPROTO);
}

/* A tiny HTTP server on 127.0.0.1 answering every connection the same way. */
struct fake_rpc {
        int listen_fd;
        int port;
        pthread_t thread;
        const char *response;   /* raw HTTP answer; NULL = accept and never answer */
        char last_request[256]; /* first line of the last request */
        int requests;
        volatile int stop;
};

static void *fake_rpc_main(void *userdata) {
        struct fake_rpc *f = userdata;
        while (!f->stop) {
                int c = accept(f->listen_fd, NULL, NULL);
                if (c < 0)
                        continue;
                char req[4096];
                size_t n = 0;
                while (n < sizeof req - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
                        ssize_t k = read(c, req + n, sizeof req - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t) k;
                }
                req[n] = '\0';
                char *eol = strstr(req, "\r\n");
                if (eol)
                        *eol = '\0';
                (void) lb_strscpy(f->last_request, sizeof f->last_request, req);
                f->requests++;
                if (f->response)
                        (void) lb_write_all(c, f->response, strlen(f->response));
                else
                        while (!f->stop) /* silent: hold the connection until the test ends */
                                usleep(20 * 1000);
                close(c);
        }
        return NULL;
}

static void fake_rpc_start(struct fake_rpc *f, const char *response) {
        *f = (struct fake_rpc) { .response = response };
        f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f->listen_fd >= 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(bind(f->listen_fd, (struct sockaddr *) &a, sizeof a), 0);
        socklen_t len = sizeof a;
        assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *) &a, &len), 0);
        f->port = ntohs(a.sin_port);
        assert_int_equal(listen(f->listen_fd, 8), 0);
        /* accept() returns now and then so the thread sees stop. */
        struct timeval tv = { .tv_sec = 0, .tv_usec = 100 * 1000 };
        assert_int_equal(setsockopt(f->listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
        assert_int_equal(pthread_create(&f->thread, NULL, fake_rpc_main, f), 0);
}

static void fake_rpc_stop(struct fake_rpc *f) {
        f->stop = 1;
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        close(f->listen_fd);
}

#define HTTP_OK_TRUE "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}"

static void test_rpc_success(void **state) {
        struct fake_rpc f;
        char url[64], reason[256] = "";
        fake_rpc_start(&f, HTTP_OK_TRUE);

        assert_int_equal(lb_snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port), 0);
        assert_int_equal(lb_fluentd_rpc(NULL, url, "plugins.flushBuffers", reason, sizeof reason), 0);
        assert_string_equal(f.last_request, "GET /api/plugins.flushBuffers HTTP/1.1");

        /* fluentd's own "host:port" form and a trailing slash. */
        assert_int_equal(lb_snprintf(url, sizeof url, "127.0.0.1:%d/", f.port), 0);
        assert_int_equal(lb_fluentd_rpc(NULL, url, "config.reload", reason, sizeof reason), 0);
        assert_string_equal(f.last_request, "GET /api/config.reload HTTP/1.1");

        /* Through the settings. */
        struct lb_context ctx = { 0 };
        ctx.settings.fluentd_rpc = url;
        assert_int_equal(lb_fluentd_flush_buffers(&ctx, reason, sizeof reason), 0);
        assert_string_equal(f.last_request, "GET /api/plugins.flushBuffers HTTP/1.1");
        assert_int_equal(lb_fluentd_reload_config(&ctx, reason, sizeof reason), 0);
        assert_string_equal(f.last_request, "GET /api/config.reload HTTP/1.1");
        assert_int_equal(f.requests, 4);

        /* Disabled, or a method that would change the URL. */
        ctx.settings.fluentd_rpc = (char *) "";
        assert_int_equal(lb_fluentd_flush_buffers(&ctx, reason, sizeof reason), -EOPNOTSUPP);
        assert_non_null(strstr(reason, "disabled"));
        assert_int_equal(lb_fluentd_rpc(NULL, url, "../x", reason, sizeof reason), -EINVAL);
        assert_int_equal(f.requests, 4);
        fake_rpc_stop(&f);
}

static void expect_rpc_failure(const char *response, int expected, const char *in_reason) {
        struct fake_rpc f;
        char url[64], reason[256] = "";
        fake_rpc_start(&f, response);
        assert_int_equal(lb_snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port), 0);
        assert_int_equal(lb_fluentd_rpc(NULL, url, "plugins.flushBuffers", reason, sizeof reason), expected);
        if (!strstr(reason, in_reason))
                print_error("reason \"%s\" lacks \"%s\"\n", reason, in_reason);
        assert_non_null(strstr(reason, in_reason));
        fake_rpc_stop(&f);
}

static void test_rpc_failures(void **state) {
        expect_rpc_failure("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n"
                           "{\"ok\":false,\"error\":\"reload failed x\"}\n",
                           -EPROTO, "reload failed x");
        expect_rpc_failure("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", -EPROTO, "404");
        expect_rpc_failure("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"ok\":false}",
                           -EBADMSG, "ok");
        expect_rpc_failure("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", -EBADMSG, "hello");
        expect_rpc_failure("garbage that is not HTTP\r\n\r\n", -EPROTO, "127.0.0.1");
}

static void test_rpc_refused_and_timeout(void **state) {
        char url[64], reason[256] = "";

        /* A port nobody listens on: bind one, note it, close it. */
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s >= 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(bind(s, (struct sockaddr *) &a, sizeof a), 0);
        socklen_t len = sizeof a;
        assert_int_equal(getsockname(s, (struct sockaddr *) &a, &len), 0);
        close(s);
        assert_int_equal(lb_snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port)), 0);
        assert_int_equal(lb_fluentd_rpc(NULL, url, "plugins.flushBuffers", reason, sizeof reason), -ECONNREFUSED);
        assert_non_null(strstr(reason, url));

        /* A server that never answers: given up after the 2 s timeout. */
        struct fake_rpc f;
        fake_rpc_start(&f, NULL);
        assert_int_equal(lb_snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port), 0);
        uint64_t t0 = lb_now_ms();
        assert_int_equal(lb_fluentd_rpc(NULL, url, "plugins.flushBuffers", reason, sizeof reason), -ETIMEDOUT);
        uint64_t took = lb_now_ms() - t0;
        assert_true(took >= 1500 && took < 5000);
        assert_non_null(strstr(reason, "2000 ms"));
        fake_rpc_stop(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render_placeholders),
                cmocka_unit_test(test_render_unknown_owner_and_group),
                cmocka_unit_test(test_render_unknown_placeholder),
                cmocka_unit_test(test_render_unterminated),
                cmocka_unit_test(test_render_rejects_injection),
                cmocka_unit_test(test_render_packaged_template),
                cmocka_unit_test_setup_teardown(test_snippet_write_and_prune, lbt_tmpdir_setup, lbt_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_install_snippet, lbt_tmpdir_setup, lbt_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_recovery_path_check, lbt_tmpdir_setup, lbt_tmpdir_teardown),
                cmocka_unit_test(test_rpc_check_answer),
                cmocka_unit_test(test_rpc_success),
                cmocka_unit_test(test_rpc_failures),
                cmocka_unit_test(test_rpc_refused_and_timeout),
        };
        if (lb_http_global_init() < 0)
                return 1;
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        lb_http_global_done();
        return r;
}
