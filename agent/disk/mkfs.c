/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/settings.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/mkfs.h"
#include "lifeboat/disk/probe.h"

const char *lb_mkfs_fstype(enum lb_fs_type fs) {
        switch (fs) {
        case LB_FS_XFS:
                return "xfs";
        case LB_FS_EXT4:
                return "ext4";
        }
        return NULL;
}

/* xfs labels hold at most 12 bytes; keep to characters no tool quotes differently. */
static bool label_valid(const char *label) {
        size_t n = label ? strlen(label) : 0;
        if (n < 1 || n > 12)
                return false;
        for (const char *p = label; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

/* The second look right before formatting: a block device, not empty, and still blank. */
static int check_still_blank(const char *node, char *errbuf, size_t errsize) {
        struct stat st;
        uint64_t size = 0;
        struct lb_probe p;
        int r;

        _cleanup_close_ int fd = open(node, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                lb_set_reason(errbuf, errsize, "%s: %s", node, strerror(-r));
                return r;
        }
        r = lb_stat_block(fd, node, &st, errbuf, errsize);
        if (r < 0)
                return r;
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
                r = -errno;
                lb_set_reason(errbuf, errsize, "%s: cannot read the size: %s", node, strerror(-r));
                return r;
        }
        if (size == 0) {
                lb_set_reason(errbuf, errsize, "%s has size 0", node);
                return -ENXIO;
        }
        r = lb_probe_device(node, &p);
        if (r < 0) {
                lb_set_reason(errbuf, errsize, "probe of %s failed: %s", node, strerror(-r));
                return r;
        }
        if (p.result != LB_PROBE_BLANK) {
                lb_set_reason(errbuf, errsize, "%s is not blank (%s%s%s), refusing to format it", node,
                              lb_probe_result_to_string(p.result), isempty(p.type) ? "" : " ", p.type);
                return -EEXIST;
        }
        return 0;
}

/* Reads fd to EOF, keeping the first size-1 bytes in buf (NUL-terminated, stripped) and
 * discarding the rest. */
static int read_bounded(int fd, char *buf, size_t size) {
        _cleanup_buf_ struct lb_buf b = { .limit = size > 0 ? size - 1 : 0 };
        int r = lb_read_fd(fd, &b, true);
        if (r < 0)
                return r;
        (void) lb_strscpy(buf, size, b.data ? lb_strstrip(b.data) : "");
        return 0;
}

static int wait_child(pid_t pid, int *ret_status) {
        for (;;) {
                if (waitpid(pid, ret_status, 0) >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

int lb_mkfs_find_program(const char *name, char *buf, size_t size) {
        const char *dirs = LB_MKFS_SEARCH_PATH;
        if (isempty(name) || strchr(name, '/'))
                return -EINVAL;
        while (*dirs) {
                size_t n = strcspn(dirs, ":");
                char path[PATH_MAX];
                int r = lb_snprintf(path, sizeof path, "%.*s/%s", (int) n, dirs, name);
                if (r < 0)
                        return r;
                if (access(path, X_OK) == 0)
                        return lb_strscpy(buf, size, path);
                dirs += n + (dirs[n] == ':');
        }
        return -ENOENT;
}

/* Child side: never returns. Only async-signal-safe calls between fork and exec. */
_Noreturn static void exec_child(char *const argv[], int out_fd, int err_fd) {
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
            dup2(out_fd, STDERR_FILENO) < 0) {
                int e = errno;
                (void) !write(err_fd, &e, sizeof e);
                _exit(127);
        }
        /* An absolute path and an environment of our own: nothing of lifeboat's (AWS keys,
         * MKE2FS_CONFIG, a PATH someone prepended to) reaches the child. */
        static char *const envp[] = LB_MKFS_ENVIRONMENT;
        execve(argv[0], argv, envp);
        int e = errno;
        (void) !write(err_fd, &e, sizeof e);
        _exit(127);
}

static int run(char *const argv[], char *errbuf, size_t errsize) {
        int out[2], exec_err[2];
        int r;

        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        _cleanup_close_ int out_r = out[0];
        _cleanup_close_ int out_w = out[1];
        if (pipe2(exec_err, O_CLOEXEC) < 0)
                return -errno;
        _cleanup_close_ int err_r = exec_err[0];
        _cleanup_close_ int err_w = exec_err[1];

        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                exec_child(argv, out_w, err_w);

        /* Our copies of the write ends must go, or the reads below never see EOF. */
        (void) close(TAKE_FD(out_w));
        (void) close(TAKE_FD(err_w));

        char output[4096];
        int rr = read_bounded(out_r, output, sizeof output);
        int exec_errno = 0;
        ssize_t n;
        do
                n = read(err_r, &exec_errno, sizeof exec_errno);
        while (n < 0 && errno == EINTR);

        int status = 0;
        r = wait_child(pid, &status);
        if (r < 0) {
                lb_set_reason(errbuf, errsize, "waiting for %s failed: %s", argv[0], strerror(-r));
                return r;
        }
        if (n == (ssize_t) sizeof exec_errno && exec_errno > 0) {
                lb_set_reason(errbuf, errsize, "cannot execute %s: %s", argv[0], strerror(exec_errno));
                return -exec_errno;
        }
        if (rr < 0)
                output[0] = '\0';
        if (WIFSIGNALED(status)) {
                lb_set_reason(errbuf, errsize, "%s killed by signal %d%s%s", argv[0], WTERMSIG(status),
                              output[0] == '\0' ? "" : ": ", output);
                return -EIO;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                lb_set_reason(errbuf, errsize, "%s exited with status %d%s%s", argv[0],
                              WIFEXITED(status) ? WEXITSTATUS(status) : -1, output[0] == '\0' ? "" : ": ", output);
                return -EIO;
        }
        return 0;
}

int lb_mkfs(enum lb_fs_type fs, const char *node, const char *label, char *errbuf, size_t errsize) {
        const char *type = lb_mkfs_fstype(fs);
        char name[16], program[PATH_MAX];
        int r;

        if (!type || isempty(node) || !label_valid(label)) {
                lb_set_reason(errbuf, errsize, "invalid mkfs arguments");
                return -EINVAL;
        }
        r = check_still_blank(node, errbuf, errsize);
        if (r < 0)
                return r;
        r = lb_snprintf(name, sizeof name, "mkfs.%s", type);
        if (r < 0)
                return r;
        r = lb_mkfs_find_program(name, program, sizeof program);
        if (r < 0) {
                lb_set_reason(errbuf, errsize, "cannot execute %s: not found in %s", name, LB_MKFS_SEARCH_PATH);
                return r;
        }

        /* No -f / -F: should anything have appeared meanwhile, mkfs refuses on its own. */
        char *const argv[] = { program, (char *) "-q", (char *) "-L", (char *) label, (char *) node, NULL };
        return run(argv, errbuf, errsize);
}
