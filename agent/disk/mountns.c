/* SPDX-License-Identifier: MIT */
/*
 * A device in every mount namespace (see mountns.h): found through /proc/PID/mountinfo of one
 * process per namespace, unmounted there from a forked child that enters the namespace, and
 * its busy holders found through /proc/PID/{fd,cwd,root,maps}.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libmount/libmount.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/dirent-util.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/mountns.h"
#include "lifeboat/disk/mounts.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_free_table);

#define PROC "/proc"
#define MAPS_MAX (16u * 1024u * 1024u)

void lb_ns_mounts_done(struct lb_ns_mounts *m) {
        free(m->items);
        *m = (struct lb_ns_mounts) { 0 };
}

/* The pid a /proc entry names, or 0 for anything else. */
static pid_t proc_pid(const char *name) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(name, &end, 10);
        if (errno != 0 || end == name || *end != '\0' || v == 0 || v > INT32_MAX)
                return 0;
        return (pid_t) v;
}

static int pid_mnt_ns(pid_t pid, uint64_t *ret) {
        char p[64];
        struct stat st;
        int r = lb_snprintf(p, sizeof p, PROC "/%ld/ns/mnt", (long) pid);
        if (r < 0)
                return r;
        if (stat(p, &st) < 0)
                return -errno;
        *ret = (uint64_t) st.st_ino;
        return 0;
}

/* ---- finding the mounts ---- */

struct ns_set {
        uint64_t *ids;
        size_t n;
};

static bool ns_seen(const struct ns_set *s, uint64_t ns) {
        for (size_t i = 0; i < s->n; i++)
                if (s->ids[i] == ns)
                        return true;
        return false;
}

static int ns_add(struct ns_set *s, uint64_t ns) {
        uint64_t *a = realloc(s->ids, (s->n + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        a[s->n++] = ns;
        s->ids = a;
        return 0;
}

static int mounts_add(struct lb_ns_mounts *m, const struct lb_ns_mount *item) {
        struct lb_ns_mount *a = realloc(m->items, (m->n + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        a[m->n++] = *item;
        m->items = a;
        return 0;
}

/* Reads pid's mountinfo: 0 and its mounts of devno added, or a negative errno when it cannot be
 * read (the process is gone, a zombie's is empty): then another process of the namespace
 * speaks for it. */
static int scan_pid(pid_t pid, uint64_t ns, bool own, dev_t devno, struct lb_ns_mounts *m) {
        char p[64];
        int r = lb_snprintf(p, sizeof p, PROC "/%ld/mountinfo", (long) pid);
        if (r < 0)
                return r;
        errno = 0;
        _cleanup_(mnt_free_tablep) struct libmnt_table *tb = mnt_new_table_from_file(p);
        if (!tb)
                return negative_errno();
        if (mnt_table_get_nents(tb) == 0)
                return -ENOENT;
        struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
        if (!it)
                return -ENOMEM;
        struct libmnt_fs *fs;
        r = 0;
        while (r >= 0 && mnt_table_next_fs(tb, it, &fs) == 0) {
                if (mnt_fs_get_devno(fs) != devno)
                        continue;
                struct lb_ns_mount item = { .pid = pid, .ns = ns, .own = own,
                                            .mnt_id = (uint64_t) mnt_fs_get_id(fs) };
                if (lb_strscpy(item.target, sizeof item.target, strempty(mnt_fs_get_target(fs))) < 0)
                        continue; /* longer than PATH_MAX: cannot be reached by name anyway */
                r = mounts_add(m, &item);
        }
        mnt_free_iter(it);
        return r;
}

int lb_mountns_find(dev_t devno, struct lb_ns_mounts *ret) {
        _cleanup_ns_mounts_ struct lb_ns_mounts m = { 0 };
        struct ns_set seen = { 0 };
        uint64_t own;
        int r = pid_mnt_ns(getpid(), &own);
        if (r >= 0)
                r = scan_pid(getpid(), own, true, devno, &m);
        if (r >= 0)
                r = ns_add(&seen, own);
        _cleanup_closedir_ DIR *d = r >= 0 ? opendir(PROC) : NULL;
        if (r >= 0 && !d)
                r = -errno;
        if (r < 0) {
                free(seen.ids);
                return r;
        }
        FOREACH_DIRENT(de, d, r = -errno; break) {
                pid_t pid = proc_pid(de->d_name);
                uint64_t ns;
                if (pid <= 0 || pid == getpid() || pid_mnt_ns(pid, &ns) < 0 || ns_seen(&seen, ns))
                        continue;
                int k = scan_pid(pid, ns, false, devno, &m);
                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k >= 0 && ns_add(&seen, ns) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        m.namespaces = seen.n;
        free(seen.ids);
        if (r < 0)
                return r;
        *ret = m;
        m = (struct lb_ns_mounts) { 0 };
        return 0;
}

/* ---- unmounting in another namespace ---- */

/* What the child tells through the pipe: the step that failed (0 = none) and its errno. */
enum child_step { STEP_DONE, STEP_SETNS, STEP_CHDIR, STEP_UMOUNT };
struct child_result {
        int step;
        int err;
};

/* In the child: only system calls, then _exit (the parent may have other threads). */
_Noreturn static void child_umount(int nsfd, int dfd, const char *name, int wfd) {
        struct child_result res = { STEP_DONE, 0 };
        if (setns(nsfd, CLONE_NEWNS) < 0)
                res = (struct child_result) { STEP_SETNS, errno };
        else if (fchdir(dfd) < 0)
                res = (struct child_result) { STEP_CHDIR, errno };
        else if (umount2(name, UMOUNT_NOFOLLOW) < 0)
                res = (struct child_result) { STEP_UMOUNT, errno };
        ssize_t n;
        do
                n = write(wfd, &res, sizeof res);
        while (n < 0 && errno == EINTR);
        _exit(n == (ssize_t) sizeof res ? 0 : 1);
}

static int run_child(int nsfd, int dfd, const char *name, struct child_result *ret) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        _cleanup_close_ int rfd = p[0], wfd = p[1];
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_umount(nsfd, dfd, name, wfd);
        (void) close(TAKE_FD(wfd));
        struct child_result res = { -1, 0 };
        ssize_t n;
        do
                n = read(rfd, &res, sizeof res);
        while (n < 0 && errno == EINTR);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (n != (ssize_t) sizeof res || !WIFEXITED(status))
                return -EPROTO;
        *ret = res;
        return 0;
}

/* Splits a mount point as a process sees it ("/a/b/c") into "a/b" (or ".") and "c". */
static int split_target(const char *target, char *dir, size_t dir_size, char *name, size_t name_size) {
        const char *slash = strrchr(target, '/');
        if (target[0] != '/' || !slash || isempty(slash + 1))
                return -EINVAL; /* "/" itself: a root mount cannot be taken away */
        int r = lb_strscpy(name, name_size, slash + 1);
        if (r < 0)
                return r;
        size_t len = (size_t) (slash - target);
        if (len <= 1)
                return lb_strscpy(dir, dir_size, ".");
        return lb_snprintf(dir, dir_size, "%.*s", (int) (len - 1), target + 1);
}

/* Opens, through /proc/PID/root, the directory holding m's mount point, after checking that the
 * name in it is still that very mount of devno. */
static int open_mount_parent(const struct lb_ns_mount *m, dev_t devno, int *ret_nsfd, int *ret_dfd, char *name,
                             size_t name_size, char *errbuf, size_t errsize) {
        char p[64], dir[PATH_MAX];
        _cleanup_close_ int nsfd = -EBADF, rootfd = -EBADF, dfd = -EBADF, fd = -EBADF;
        int r = split_target(m->target, dir, sizeof dir, name, name_size);
        if (r < 0) {
                lb_set_reason(errbuf, errsize, "%s cannot be unmounted by name", m->target);
                return r == -EINVAL ? -EBUSY : r;
        }
        r = lb_snprintf(p, sizeof p, PROC "/%ld/ns/mnt", (long) m->pid);
        if (r < 0)
                return r;
        nsfd = open(p, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (nsfd < 0 || fstat(nsfd, &st) < 0 || (uint64_t) st.st_ino != m->ns)
                return -ESTALE; /* the process went away (or its pid is someone else's now) */
        r = lb_snprintf(p, sizeof p, PROC "/%ld/root", (long) m->pid);
        if (r < 0)
                return r;
        rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return -ESTALE;
        r = lb_chase_at(rootfd, dir, O_PATH | O_DIRECTORY, &dfd);
        if (r >= 0)
                r = lb_chase_at(dfd, name, O_PATH | O_DIRECTORY, &fd);
        if (r < 0) {
                lb_set_reason(errbuf, errsize, "%s in mount namespace mnt:[%" PRIu64 "] (pid %ld): %s", m->target,
                              m->ns, (long) m->pid, r == -ELOOP ? "a symlink is in the way" : strerror(-r));
                return r == -ENOENT ? -ESTALE : r;
        }
        uint64_t id;
        bool root;
        r = lb_fd_mount_id(fd, &id, &root);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (id != m->mnt_id || !root || st.st_dev != devno)
                return -ESTALE; /* not the mount the scan saw: look again */
        *ret_nsfd = TAKE_FD(nsfd);
        *ret_dfd = TAKE_FD(dfd);
        return 0;
}

int lb_mountns_umount(const struct lb_ns_mount *m, dev_t devno, char *errbuf, size_t errsize) {
        if (m->own) {
                int k = lb_mount_is_mounted_at(devno, m->target);
                if (k <= 0)
                        return k < 0 ? k : -ESTALE;
                return lb_umount(m->target, errbuf, errsize);
        }
        _cleanup_close_ int nsfd = -EBADF, dfd = -EBADF;
        char name[NAME_MAX + 1];
        int r = open_mount_parent(m, devno, &nsfd, &dfd, name, sizeof name, errbuf, errsize);
        if (r < 0)
                return r;
        struct child_result res = { STEP_DONE, 0 };
        r = run_child(nsfd, dfd, name, &res);
        if (r < 0) {
                lb_set_reason(errbuf, errsize, "cannot run the unmount in mount namespace mnt:[%" PRIu64 "]: %s",
                              m->ns, strerror(-r));
                return r;
        }
        if (res.step == STEP_DONE)
                return 0;
        static const char *const what[] = { [STEP_SETNS] = "cannot enter the mount namespace",
                                             [STEP_CHDIR] = "cannot change to the mount point's directory",
                                             [STEP_UMOUNT] = "umount" };
        if (res.step == STEP_UMOUNT && res.err == EBUSY)
                lb_set_reason(errbuf, errsize, "%s in mount namespace mnt:[%" PRIu64 "] (pid %ld): target is busy",
                              m->target, m->ns, (long) m->pid);
        else
                lb_set_reason(errbuf, errsize, "%s in mount namespace mnt:[%" PRIu64 "] (pid %ld): %s: %s", m->target,
                              m->ns, (long) m->pid, res.step >= STEP_SETNS && res.step <= STEP_UMOUNT ? what[res.step] : "?",
                              strerror(res.err));
        return res.err > 0 ? -res.err : -EIO;
}

/* ---- who keeps it busy ---- */

static bool path_on(int dfd, const char *name, dev_t devno) {
        struct stat st;
        return fstatat(dfd, name, &st, 0) == 0 && st.st_dev == devno;
}

static bool fds_on(int piddir, dev_t devno) {
        int fd = openat(piddir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return false;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return false;
        }
        FOREACH_DIRENT(de, d, break) {
                if (path_on(dirfd(d), de->d_name, devno))
                        return true;
        }
        return false;
}

/* A line of /proc/PID/maps: "start-end perms offset MAJ:MIN inode path" (hex major:minor). */
static bool maps_on(int piddir, dev_t devno) {
        _cleanup_close_ int fd = openat(piddir, "maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        _cleanup_buf_ struct lb_buf b = { .limit = MAPS_MAX };
        if (lb_read_fd(fd, &b, true) < 0 || !b.data)
                return false;
        for (char *line = b.data; line && *line;) {
                char *next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                unsigned maj, min;
                unsigned long long inode;
                if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &inode) == 3 && inode != 0 &&
                    makedev(maj, min) == devno)
                        return true;
                line = next;
        }
        return false;
}

static void holder_fill(int piddir, pid_t pid, struct lb_holder *h) {
        char comm[64] = "";
        _cleanup_close_ int fd = openat(piddir, "comm", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = read(fd, comm, sizeof comm - 1);
                comm[n > 0 ? n : 0] = '\0';
        }
        *h = (struct lb_holder) { .pid = pid };
        (void) lb_cescape(lb_strstrip(comm), h->comm, sizeof h->comm);
        (void) pid_mnt_ns(pid, &h->ns);
}

int lb_device_holders(dev_t devno, struct lb_holder *out, size_t max, size_t *ret_total) {
        _cleanup_closedir_ DIR *d = opendir(PROC);
        if (!d)
                return -errno;
        size_t total = 0;
        FOREACH_DIRENT(de, d, return -errno) {
                pid_t pid = proc_pid(de->d_name);
                if (pid <= 0 || pid == getpid())
                        continue;
                _cleanup_close_ int piddir = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (piddir < 0)
                        continue;
                if (!path_on(piddir, "cwd", devno) && !path_on(piddir, "root", devno) && !fds_on(piddir, devno) &&
                    !maps_on(piddir, devno))
                        continue;
                if (total < max)
                        holder_fill(piddir, pid, &out[total]);
                total++;
        }
        *ret_total = total;
        return 0;
}

int lb_device_claimed(const char *node, dev_t devno) {
        _cleanup_close_ int fd = open(node, O_RDONLY | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == EBUSY)
                        return 1;
                return errno == ENOENT || errno == ENXIO || errno == ENODEV ? 0 : -errno;
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        return st.st_rdev == devno ? 0 : -EXDEV;
}
