/* SPDX-License-Identifier: MIT */
/*
 * Probing, verifying, mounting and formatting real loop devices (root
 * required). Every test gets a mkdtemp directory holding sparse images, a
 * fake sysfs tree and device nodes (mknod'ed with the loop devices' numbers).
 * The teardown unmounts everything under that directory, detaches the loop
 * devices (attached with LO_FLAGS_AUTOCLEAR, so even a crashed test leaves
 * none behind once its descriptors close) and removes the directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <mntent.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/blockdev.h"
#include "lifeboat/disk/mkfs.h"
#include "lifeboat/disk/mounts.h"
#include "lifeboat/disk/mountns.h"
#include "lifeboat/disk/probe.h"
#include "testutil.h"

#define MIB (UINT64_C(1) << 20)
#define MAX_LOOPS 3

struct loop {
        int fd;                 /* keeps the auto-clearing loop device alive */
        char name[32];          /* "loop3" */
        struct lb_blockdev dev; /* node and sysfs in the fixture's tree */
};

/* A process in a mount namespace of its own (what a container is), holding copies of the mounts
 * that existed when it was made; it lives until its pipe closes. */
struct ns_holder {
        pid_t pid;
        int release_fd;         /* closing it ends the holder */
};

struct fx {
        char root[PATH_MAX];
        char sys[PATH_MAX];
        char dev[PATH_MAX];
        struct loop loops[MAX_LOOPS];
        size_t n_loops;
        struct ns_holder holders[4];
        size_t n_holders;
};

/* ---- helpers ---- */

/* Runs argv (PATH lookup, no shell), output to /dev/null; returns the exit status or -1. */
static int spawn(char *const argv[]) {
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);
                if (null >= 0) {
                        (void) dup2(null, STDIN_FILENO);
                        (void) dup2(null, STDOUT_FILENO);
                }
                execvp(argv[0], argv);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Attaches image to a free loop device with LOOP_CONFIGURE (autoclear), retrying lost races. */
static int loop_attach(const char *image, int *ret_fd, char *name, size_t size) {
        _cleanup_close_ int img = open(image, O_RDWR | O_CLOEXEC);
        _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (img < 0 || ctl < 0)
                return -errno;
        for (int attempt = 0; attempt < 50; attempt++) {
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return -errno;
                char path[64];
                (void) lb_snprintf(path, sizeof path, "/dev/loop%d", n);
                int fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ENOENT) { /* devtmpfs has not caught up yet */
                                lb_sleep_ms(10, NULL);
                                continue;
                        }
                        return -errno;
                }
                struct loop_config cfg = { .fd = (unsigned) img, .info.lo_flags = LO_FLAGS_AUTOCLEAR };
                if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
                        *ret_fd = fd;
                        return lb_snprintf(name, size, "loop%d", n);
                }
                int e = errno;
                (void) close(fd);
                if (e != EBUSY)
                        return -e;
        }
        return -EBUSY;
}

/*
 * A sparse image of size_mib MiB on a new loop device, with SYS/class/block/loopN/{dev,size,holders/}
 * and DEV/loopN made with mknod; returns its lb_blockdev (via lb_blockdev_load).
 */
static struct lb_blockdev *add_loop(struct fx *f, uint64_t size_mib) {
        assert_true(f->n_loops < MAX_LOOPS);
        struct loop *l = &f->loops[f->n_loops];
        char img[PATH_MAX], p[PATH_MAX], text[64];

        lbt_pathf(img, "%s/disk%zu.img", f->root, f->n_loops);
        int fd = open(img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t) (size_mib * MIB)), 0);
        assert_int_equal(close(fd), 0);

        assert_int_equal(loop_attach(img, &l->fd, l->name, sizeof l->name), 0);
        f->n_loops++;

        struct stat st;
        assert_int_equal(fstat(l->fd, &st), 0);
        uint64_t bytes = 0;
        assert_int_equal(ioctl(l->fd, BLKGETSIZE64, &bytes), 0);
        assert_int_equal(bytes, size_mib * MIB);

        lbt_pathf(p, "%s/class/block/%s/holders", f->sys, l->name);
        assert_int_equal(lb_mkdir_p(p, 0755), 0);
        lbt_pathf(p, "%s/class/block/%s/dev", f->sys, l->name);
        assert_int_equal(lb_snprintf(text, sizeof text, "%u:%u\n", major(st.st_rdev), minor(st.st_rdev)), 0);
        lbt_write_text(p, text);
        lbt_pathf(p, "%s/class/block/%s/size", f->sys, l->name);
        assert_int_equal(lb_snprintf(text, sizeof text, "%llu\n", (unsigned long long) (bytes / 512)), 0);
        lbt_write_text(p, text);
        lbt_pathf(p, "%s/%s", f->dev, l->name);
        assert_int_equal(mknod(p, S_IFBLK | 0600, st.st_rdev), 0);

        char reason[256] = "";
        assert_int_equal(lb_blockdev_load(f->sys, f->dev, l->name, &l->dev, reason, sizeof reason), 0);
        assert_int_equal(l->dev.devno, st.st_rdev);
        return &l->dev;
}

/* Writes len bytes at offset through the device node (the block device's own cache stays coherent). */
static void write_at(const char *node, off_t offset, const void *data, size_t len) {
        int fd = open(node, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, data, len, offset), (ssize_t) len);
        assert_int_equal(fsync(fd), 0);
        assert_int_equal(close(fd), 0);
}

static void read_at(const char *node, off_t offset, void *data, size_t len) {
        int fd = open(node, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, data, len, offset), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

static void mnt_path(struct fx *f, char *buf, const char *leaf) {
        lbt_pathf(buf, "%s/mnt/%s", f->root, leaf);
}

/* Unmounts every mount point below root, deepest first, until none is left. */
static int umount_below(const char *root) {
        size_t rl = strlen(root);
        for (int round = 0; round < 16; round++) {
                FILE *m = setmntent("/proc/self/mounts", "re");
                if (!m)
                        return -1;
                char victim[PATH_MAX] = "";
                struct mntent *e;
                while ((e = getmntent(m)))
                        if (strncmp(e->mnt_dir, root, rl) == 0 && e->mnt_dir[rl] == '/')
                                (void) lb_strscpy(victim, sizeof victim, e->mnt_dir); /* the last one */
                (void) endmntent(m);
                if (victim[0] == '\0')
                        return 0;
                if (umount2(victim, 0) < 0 && umount2(victim, MNT_DETACH) < 0)
                        return -1;
        }
        return -1;
}

static void holder_end(struct ns_holder *h) {
        if (h->pid <= 0)
                return;
        (void) close(h->release_fd);
        int status;
        while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
                ;
        h->pid = 0;
}

static int fx_cleanup(struct fx *f) {
        /* The holders first: their namespaces keep copies of the mounts and the loop devices. */
        for (size_t i = 0; i < f->n_holders; i++)
                holder_end(&f->holders[i]);
        f->n_holders = 0;
        int ok = umount_below(f->root) == 0;
        for (size_t i = 0; i < f->n_loops; i++) {
                /* autoclear would detach on the last close; clearing explicitly does not wait for that */
                (void) ioctl(f->loops[i].fd, LOOP_CLR_FD, 0);
                ok &= close(f->loops[i].fd) == 0;
        }
        f->n_loops = 0;
        if (ok && f->root[0])
                ok = lbt_rm_rf(f->root) == 0;
        return ok ? 0 : -1;
}

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof *f);
        if (!f)
                return -1;
        if (lbt_mkdtemp(f->root, sizeof f->root) < 0) {
                free(f);
                return -1;
        }
        if (lb_snprintf(f->sys, sizeof f->sys, "%s/sys", f->root) < 0 ||
            lb_snprintf(f->dev, sizeof f->dev, "%s/dev", f->root) < 0 ||
            lb_mkdir_p(f->sys, 0755) < 0 || lb_mkdir_p(f->dev, 0755) < 0) {
                (void) fx_cleanup(f);
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;
        int r = fx_cleanup(f);
        free(f);
        return r;
}

static int group_setup(void **state) {
        (void) state;
        /* These tests need what lifeboat needs: root, loop devices, xfs and ext4. Failing loudly
         * beats skipping quietly. */
        if (geteuid() != 0) {
                fprintf(stderr, "test-probe-mount must run as root\n");
                return -1;
        }
        if (access("/dev/loop-control", R_OK | W_OK) < 0) {
                fprintf(stderr, "no /dev/loop-control\n");
                return -1;
        }
        return 0;
}

/*
 * Starts a holder: a child that enters a new mount namespace with private propagation (as
 * "unshare --mount --propagation private" and Docker's rprivate binds do) and, if open_path is
 * given, keeps that file open there. Returns once it is ready.
 */
static struct ns_holder *start_holder(struct fx *f, const char *open_path) {
        assert_true(f->n_holders < ELEMENTSOF(f->holders));
        int ready[2], release[2];
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(release, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) close(release[1]);
                char ok = 'n';
                int held = -1;
                if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                    (!open_path || (held = open(open_path, O_RDONLY | O_CLOEXEC)) >= 0))
                        ok = 'y';
                (void) !write(ready[1], &ok, 1);
                char c;
                (void) !read(release[0], &c, 1); /* until the parent closes its end */
                _exit(0);
        }
        (void) close(ready[1]);
        (void) close(release[0]);
        struct ns_holder *h = &f->holders[f->n_holders++];
        *h = (struct ns_holder) { .pid = pid, .release_fd = release[1] };
        char ok = 0;
        assert_int_equal(read(ready[0], &ok, 1), 1);
        (void) close(ready[0]);
        assert_int_equal(ok, 'y');
        return h;
}

static uint64_t ns_of(pid_t pid) {
        char p[64];
        struct stat st;
        lbt_pathf(p, "/proc/%ld/ns/mnt", (long) pid);
        assert_int_equal(stat(p, &st), 0);
        return (uint64_t) st.st_ino;
}

/* Formats with lb_mkfs and returns the fresh probe. */
static struct lb_probe format(const struct lb_blockdev *d, enum lb_fs_type fs) {
        char err[1024] = "";
        int r = lb_mkfs(fs, d->node, "lifeboat", err, sizeof err);
        if (r < 0)
                fprintf(stderr, "lb_mkfs: %s\n", err);
        assert_int_equal(r, 0);
        struct lb_probe p;
        assert_int_equal(lb_probe_device(d->node, &p), 0);
        return p;
}

/* ---- probe ---- */

static void test_probe_blank(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 64);
        struct lb_probe p;
        char reason[256] = "";

        assert_int_equal(lb_probe_device(d->node, &p), 0);
        assert_int_equal(p.result, LB_PROBE_BLANK);
        assert_string_equal(lb_probe_result_to_string(p.result), "blank");

        struct lb_probe untouched = { .type = "keep" };
        assert_int_equal(lb_blockdev_verify(d, NULL, &untouched, reason, sizeof reason), -ENOMEDIUM);
        assert_string_equal(reason, "blank device (no filesystem)");
        assert_string_equal(untouched.type, "keep");

        char missing[PATH_MAX];
        lbt_pathf(missing, "%s/nothing", f->dev);
        assert_int_equal(lb_probe_device(missing, &p), -ENOENT);
}

static void test_mkfs_xfs_probe_and_verify(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 512);
        char reason[256] = "", err[1024] = "";

        struct lb_probe p = format(d, LB_FS_XFS);
        assert_int_equal(p.result, LB_PROBE_FILESYSTEM);
        assert_string_equal(p.type, "xfs");
        assert_string_equal(p.label, "lifeboat");
        assert_int_equal(strlen(p.uuid), 36);

        struct lb_probe v;
        assert_int_equal(lb_blockdev_verify(d, NULL, &v, reason, sizeof reason), 0);
        assert_string_equal(v.uuid, p.uuid);
        assert_int_equal(lb_blockdev_verify(d, p.uuid, &v, reason, sizeof reason), 0);
        assert_int_equal(lb_blockdev_verify(d, "", NULL, reason, sizeof reason), 0);

        /* the tag's UUID must match */
        const char *other = "12345678-1234-1234-1234-123456789abc";
        assert_int_equal(lb_blockdev_verify(d, other, &v, reason, sizeof reason), -ESTALE);
        char want[256];
        assert_int_equal(lb_snprintf(want, sizeof want, "filesystem UUID %s does not match tag %s", p.uuid, other), 0);
        assert_string_equal(reason, want);

        /* never formats a device that is not blank */
        assert_int_equal(lb_mkfs(LB_FS_XFS, d->node, "lifeboat", err, sizeof err), -EEXIST);
        assert_non_null(strstr(err, "not blank"));
        struct lb_probe again;
        assert_int_equal(lb_probe_device(d->node, &again), 0);
        assert_string_equal(again.uuid, p.uuid);
}

static void test_mkfs_ext4_probe(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 128);
        char reason[256] = "";

        struct lb_probe p = format(d, LB_FS_EXT4);
        assert_int_equal(p.result, LB_PROBE_FILESYSTEM);
        assert_string_equal(p.type, "ext4");
        assert_string_equal(p.label, "lifeboat");
        assert_int_equal(strlen(p.uuid), 36);
        assert_int_equal(lb_blockdev_verify(d, p.uuid, NULL, reason, sizeof reason), 0);
}

static void test_mkfs_errors(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *small = add_loop(f, 64);
        char err[1024] = "";

        /* mkfs.xfs refuses 64 MiB: non-zero exit -> -EIO with its own words */
        assert_int_equal(lb_mkfs(LB_FS_XFS, small->node, "lifeboat", err, sizeof err), -EIO);
        assert_non_null(strstr(err, "mkfs.xfs exited with status 1"));
        assert_non_null(strstr(err, "300MB"));
        struct lb_probe p;
        assert_int_equal(lb_probe_device(small->node, &p), 0);
        assert_int_equal(p.result, LB_PROBE_BLANK);

        /* a program that cannot be found */
        const char *old = getenv("PATH");
        char *saved = old ? strdup(old) : NULL;
        assert_int_equal(setenv("PATH", "/nonexistent-lifeboat-path", 1), 0);
        int r = lb_mkfs(LB_FS_EXT4, small->node, "lifeboat", err, sizeof err);
        if (saved)
                assert_int_equal(setenv("PATH", saved, 1), 0);
        else
                assert_int_equal(unsetenv("PATH"), 0);
        free(saved);
        assert_int_equal(r, -ENOENT);
        assert_non_null(strstr(err, "cannot execute mkfs.ext4"));

        /* bad labels, bad nodes */
        assert_int_equal(lb_mkfs(LB_FS_EXT4, small->node, "thirteen-long", err, sizeof err), -EINVAL);
        assert_int_equal(lb_mkfs(LB_FS_EXT4, small->node, "a b", err, sizeof err), -EINVAL);
        assert_int_equal(lb_mkfs(LB_FS_EXT4, small->node, "", err, sizeof err), -EINVAL);
        char file[PATH_MAX];
        lbt_pathf(file, "%s/disk0.img", f->root);
        assert_int_equal(lb_mkfs(LB_FS_EXT4, file, "lifeboat", err, sizeof err), -ENOTBLK);

        assert_string_equal(lb_mkfs_fstype(LB_FS_XFS), "xfs");
        assert_string_equal(lb_mkfs_fstype(LB_FS_EXT4), "ext4");
}

/* A classic MBR: one Linux partition from sector 2048, and the 0x55AA signature. */
static void write_mbr(const char *node) {
        uint8_t mbr[512] = { 0 };
        uint8_t *e = mbr + 446;
        e[0] = 0x00;                                    /* not bootable */
        e[1] = 0x20, e[2] = 0x21, e[3] = 0x00;          /* CHS start */
        e[4] = 0x83;                                    /* Linux */
        e[5] = 0xfe, e[6] = 0xff, e[7] = 0xff;          /* CHS end */
        const uint32_t start = 2048, count = 63 * 2048;
        for (int i = 0; i < 4; i++) {
                e[8 + i] = (uint8_t) (start >> (8 * i));
                e[12 + i] = (uint8_t) (count >> (8 * i));
        }
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        write_at(node, 446, mbr + 446, 66);
}

static void test_probe_partition_table(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *blank = add_loop(f, 64);
        struct lb_blockdev *ext4 = add_loop(f, 128);
        char reason[256] = "";
        struct lb_probe p;

        write_mbr(blank->node);
        assert_int_equal(lb_probe_device(blank->node, &p), 0);
        assert_int_equal(p.result, LB_PROBE_PARTITION_TABLE);
        assert_string_equal(p.type, "dos");
        assert_int_equal(lb_blockdev_verify(blank, NULL, NULL, reason, sizeof reason), -EMEDIUMTYPE);
        assert_string_equal(reason, "partition table found (dos)");

        /* libblkid 2.38 reports both an ext4 superblock and the MBR (rc 0): the table wins */
        (void) format(ext4, LB_FS_EXT4);
        write_mbr(ext4->node);
        assert_int_equal(lb_probe_device(ext4->node, &p), 0);
        assert_int_equal(p.result, LB_PROBE_PARTITION_TABLE);
        assert_string_equal(p.type, "dos");
        assert_int_equal(lb_blockdev_verify(ext4, NULL, NULL, reason, sizeof reason), -EMEDIUMTYPE);
        assert_string_equal(reason, "partition table found (dos)");

        /* and mkfs refuses a device with a partition table */
        char err[512] = "";
        assert_int_equal(lb_mkfs(LB_FS_EXT4, blank->node, "lifeboat", err, sizeof err), -EEXIST);
}

static void test_probe_ambivalent(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 512);
        char reason[256] = "";
        uint8_t xfs_sb[512], zero[64 * 1024] = { 0 };

        /* An xfs superblock (sector 0) ... */
        struct lb_probe p = format(d, LB_FS_XFS);
        assert_string_equal(p.type, "xfs");
        read_at(d->node, 0, xfs_sb, sizeof xfs_sb);
        assert_memory_equal(xfs_sb, "XFSB", 4);
        /* ... wiped, ext4 made on the now blank device, and the xfs sector put back where ext4 leaves
         * room for a boot loader: two valid superblocks at once. */
        write_at(d->node, 0, zero, sizeof zero);
        assert_int_equal(lb_probe_device(d->node, &p), 0);
        assert_int_equal(p.result, LB_PROBE_BLANK);
        p = format(d, LB_FS_EXT4);
        assert_string_equal(p.type, "ext4");
        write_at(d->node, 0, xfs_sb, sizeof xfs_sb);

        /* libblkid 2.38.1: blkid_do_safeprobe returns -2 */
        assert_int_equal(lb_probe_device(d->node, &p), 0);
        assert_int_equal(p.result, LB_PROBE_AMBIGUOUS);
        assert_int_equal(lb_blockdev_verify(d, NULL, NULL, reason, sizeof reason), -ENOTUNIQ);
        assert_non_null(strstr(reason, "ambivalent probe result"));
        char err[512] = "";
        assert_int_equal(lb_mkfs(LB_FS_XFS, d->node, "lifeboat", err, sizeof err), -EEXIST);
}

static void test_probe_unsupported(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 64);
        char reason[256] = "";
        struct lb_probe p;

        char *argv[] = { (char *) "mkswap", d->node, NULL };
        assert_int_equal(spawn(argv), 0);
        assert_int_equal(lb_probe_device(d->node, &p), 0);
        assert_int_equal(p.result, LB_PROBE_FILESYSTEM);
        assert_string_equal(p.type, "swap");
        assert_int_equal(lb_blockdev_verify(d, NULL, NULL, reason, sizeof reason), -EMEDIUMTYPE);
        assert_string_equal(reason, "unsupported filesystem 'swap'");
}

/* ---- verify ---- */

static void test_verify_refusals(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 128);
        char reason[256] = "", p[PATH_MAX];

        struct lb_probe fs = format(d, LB_FS_EXT4);
        assert_int_equal(lb_blockdev_verify(d, fs.uuid, NULL, reason, sizeof reason), 0);

        /* holders */
        lbt_pathf(p, "%s/holders/dm-0", d->sysfs);
        lbt_write_text(p, "");
        assert_int_equal(lb_blockdev_verify(d, fs.uuid, NULL, reason, sizeof reason), -EUSERS);
        assert_string_equal(reason, "device has holders (dm-0)");
        assert_int_equal(unlink(p), 0);

        /* someone holds it exclusively (as a mount in another namespace would) */
        int excl = open(d->node, O_RDONLY | O_EXCL | O_CLOEXEC);
        assert_true(excl >= 0);
        int r = lb_blockdev_verify(d, fs.uuid, NULL, reason, sizeof reason);
        assert_int_equal(close(excl), 0);
        assert_int_equal(r, -EBUSY);
        assert_string_equal(reason, "device is in use (exclusive open failed)");

        /* the node is not what sysfs describes */
        struct lb_blockdev wrong = *d;
        wrong.devno = makedev(major(d->devno), minor(d->devno) + 1);
        assert_int_equal(lb_blockdev_verify(&wrong, NULL, NULL, reason, sizeof reason), -EXDEV);
        lbt_pathf(wrong.node, "%s/disk0.img", f->root);
        wrong.devno = d->devno;
        assert_int_equal(lb_blockdev_verify(&wrong, NULL, NULL, reason, sizeof reason), -ENOTBLK);

        assert_int_equal(lb_blockdev_verify(d, fs.uuid, NULL, reason, sizeof reason), 0);
}

/* ---- mount ---- */

static void test_mount_verify_umount(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 512);
        char reason[256] = "", err[512] = "", opts[128], target[PATH_MAX], parent[PATH_MAX];

        struct lb_probe fs = format(d, LB_FS_XFS);
        assert_int_equal(lb_mount_find_devno(d->devno, NULL), 0);

        assert_int_equal(lb_mount_options("xfs", false, opts, sizeof opts), 0);
        assert_string_equal(opts, "nodev,nosuid,noexec,noatime");
        mnt_path(f, target, "deep/buffer");     /* created by lb_mount */
        assert_int_equal(lb_mount(d->node, target, "xfs", opts, err, sizeof err), 0);

        struct statvfs sv;
        assert_int_equal(statvfs(target, &sv), 0);
        assert_true(sv.f_flag & ST_NODEV);
        assert_true(sv.f_flag & ST_NOSUID);
        assert_true(sv.f_flag & ST_NOEXEC);
        assert_true(sv.f_flag & ST_NOATIME);
        lbt_pathf(parent, "%s/mnt/deep", f->root);

        /* where is it mounted? */
        char *where = NULL;
        assert_int_equal(lb_mount_find_devno(d->devno, &where), 1);
        assert_string_equal(where, target);
        free(where);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 1);
        char unclean[PATH_MAX];
        lbt_pathf(unclean, "%s/mnt//deep/./buffer/", f->root);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, unclean), 1);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, parent), 0);
        assert_int_equal(lb_mount_is_mounted_at(makedev(major(d->devno), minor(d->devno) + 1), target), 0);
        lbt_pathf(unclean, "%s/mnt/nonexistent", f->root);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, unclean), 0);

        /* a mounted device is never handed out again */
        char want[PATH_MAX + 32];
        assert_int_equal(lb_snprintf(want, sizeof want, "already mounted at %s", target), 0);
        assert_int_equal(lb_blockdev_verify(d, fs.uuid, NULL, reason, sizeof reason), -EBUSY);
        assert_string_equal(reason, want);

        /* the files land on the device */
        char file[PATH_MAX];
        lbt_pathf(file, "%s/chunk", target);
        lbt_write_text(file, "data\n");

        assert_int_equal(lb_umount(target, err, sizeof err), 0);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 0);
        assert_int_equal(lb_mount_find_devno(d->devno, NULL), 0);
        assert_int_equal(access(file, F_OK), -1);
        assert_int_equal(lb_blockdev_verify(d, fs.uuid, NULL, reason, sizeof reason), 0);

        /* umount of something not mounted: an error with umount(8)'s words */
        err[0] = '\0';
        assert_true(lb_umount(target, err, sizeof err) < 0);
        assert_non_null(strstr(err, "not mounted"));

        /* mounting again brings the file back (idempotent reruns find it "mounted here") */
        assert_int_equal(lb_mount(d->node, target, "xfs", opts, err, sizeof err), 0);
        assert_int_equal(access(file, F_OK), 0);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 1);
        assert_int_equal(lb_umount(target, err, sizeof err), 0);
}

static void test_mount_xfs_same_uuid_needs_nouuid(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *a = add_loop(f, 512);
        struct lb_blockdev *b = add_loop(f, 512);
        char err[512] = "", opts[128], ta[PATH_MAX], tb[PATH_MAX];

        struct lb_probe pa = format(a, LB_FS_XFS);
        char uuid_opt[64];
        assert_int_equal(lb_snprintf(uuid_opt, sizeof uuid_opt, "uuid=%s", pa.uuid), 0);
        char *argv[] = { (char *) "mkfs.xfs", (char *) "-q", (char *) "-m", uuid_opt, b->node, NULL };
        assert_int_equal(spawn(argv), 0);
        struct lb_probe pb;
        assert_int_equal(lb_probe_device(b->node, &pb), 0);
        assert_string_equal(pb.uuid, pa.uuid);

        mnt_path(f, ta, "live");
        mnt_path(f, tb, "recovered");
        assert_int_equal(lb_mount_options("xfs", false, opts, sizeof opts), 0);
        assert_int_equal(lb_mount(a->node, ta, "xfs", opts, err, sizeof err), 0);

        /* without nouuid the kernel refuses the duplicate UUID */
        err[0] = '\0';
        int r = lb_mount(b->node, tb, "xfs", opts, err, sizeof err);
        assert_true(r < 0);
        assert_true(err[0] != '\0');
        assert_int_equal(lb_mount_is_mounted_at(b->devno, tb), 0);

        /* a recovery mount adds nouuid */
        assert_int_equal(lb_mount_options("xfs", true, opts, sizeof opts), 0);
        assert_string_equal(opts, "nodev,nosuid,noexec,noatime,nouuid");
        r = lb_mount(b->node, tb, "xfs", opts, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "lb_mount: %s\n", err);
        assert_int_equal(r, 0);
        assert_int_equal(lb_mount_is_mounted_at(b->devno, tb), 1);
        assert_int_equal(lb_mount_is_mounted_at(a->devno, ta), 1);

        assert_int_equal(lb_umount(tb, err, sizeof err), 0);
        assert_int_equal(lb_umount(ta, err, sizeof err), 0);
}

static void test_mount_refuses_regular_file(void **state) {
        struct fx *f = *state;
        char img[PATH_MAX], target[PATH_MAX], err[512] = "";

        /* a perfectly mountable filesystem image, but a file: libmount would loop-mount it */
        lbt_pathf(img, "%s/fs.img", f->root);
        int fd = open(img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t) (64 * MIB)), 0);
        assert_int_equal(close(fd), 0);
        char *argv[] = { (char *) "mkfs.ext4", (char *) "-q", img, NULL };
        assert_int_equal(spawn(argv), 0);

        mnt_path(f, target, "file");
        assert_int_equal(lb_mount(img, target, "ext4", "nodev", err, sizeof err), -ENOTBLK);
        assert_non_null(strstr(err, "not a block device"));
        struct stat st;
        assert_int_equal(stat(target, &st), -1); /* refused before creating anything */
        assert_int_equal(errno, ENOENT);

        /* a directory is no block device either */
        assert_int_equal(lb_mount(f->dev, target, "ext4", NULL, err, sizeof err), -ENOTBLK);
        /* nor is a missing path */
        lbt_pathf(img, "%s/missing", f->root);
        assert_int_equal(lb_mount(img, target, "ext4", NULL, err, sizeof err), -ENOENT);
}

static void test_mount_failure_message(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 128);
        char err[512] = "", target[PATH_MAX];

        (void) format(d, LB_FS_EXT4);
        mnt_path(f, target, "wrongtype");
        int r = lb_mount(d->node, target, "xfs", "nodev,nosuid,noexec,noatime", err, sizeof err);
        assert_int_equal(r, -EINVAL);
        /* mount(8)'s words, via mnt_context_get_excode */
        assert_non_null(strstr(err, "wrong fs type"));
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 0);

        /* a bad option is refused by the kernel, with a message too */
        err[0] = '\0';
        r = lb_mount(d->node, target, "ext4", "nodev,bogus_option_lifeboat", err, sizeof err);
        assert_true(r < 0);
        assert_true(err[0] != '\0');
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 0);

        /* and the right type works */
        assert_int_equal(lb_mount(d->node, target, "ext4", "nodev,nosuid,noexec,noatime", err, sizeof err), 0);
        assert_int_equal(lb_umount(target, err, sizeof err), 0);
}


/* ---- mount points a container could have prepared ---- */

static void test_mount_never_follows_a_symlink(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 128);
        char err[512] = "", opts[128], target[PATH_MAX], elsewhere[PATH_MAX], marker[PATH_MAX];

        (void) format(d, LB_FS_EXT4);
        assert_int_equal(lb_mount_options("ext4", true, opts, sizeof opts), 0);
        /* the attacker's target: a host directory that must stay as it is */
        lbt_pathf(elsewhere, "%s/etc-cron.d", f->root);
        lbt_pathf(marker, "%s/keep", elsewhere);
        lbt_write_text(marker, "untouched\n");

        /* a symlink at the mount point */
        mnt_path(f, target, "recovery/vol-0123456789abcdef0");
        char parent[PATH_MAX];
        lbt_pathf(parent, "%s/mnt/recovery", f->root);
        assert_int_equal(lb_mkdir_p(parent, 0755), 0);
        assert_int_equal(symlink(elsewhere, target), 0);
        assert_int_equal(lb_mount(d->node, target, "ext4", opts, err, sizeof err), -ELOOP);
        assert_non_null(strstr(err, "is a symlink"));
        assert_int_equal(lb_mount_find_devno(d->devno, NULL), 0);
        assert_int_equal(access(marker, F_OK), 0);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 0);
        assert_int_equal(unlink(target), 0);

        /* a symlink above it */
        char linkdir[PATH_MAX], via[PATH_MAX];
        lbt_pathf(linkdir, "%s/mnt/linked", f->root);
        assert_int_equal(symlink(elsewhere, linkdir), 0);
        lbt_pathf(via, "%s/vol-0123456789abcdef0", linkdir);
        assert_int_equal(lb_mount(d->node, via, "ext4", opts, err, sizeof err), -ELOOP);
        assert_int_equal(lb_mount_find_devno(d->devno, NULL), 0);
        struct stat st;
        assert_int_equal(lstat(via, &st), -1); /* nothing created through it */

        /* a regular file (or a FIFO) at the mount point */
        lbt_write_text(target, "not a directory\n");
        assert_int_equal(lb_mount(d->node, target, "ext4", opts, err, sizeof err), -ENOTDIR);
        assert_non_null(strstr(err, "not a directory"));
        assert_int_equal(unlink(target), 0);
        assert_int_equal(mkfifo(target, 0644), 0);
        assert_int_equal(lb_mount(d->node, target, "ext4", opts, err, sizeof err), -ENOTDIR);
        assert_int_equal(unlink(target), 0);

        /* the real thing works, and ext4 recoveries say errors=remount-ro in the mount table */
        assert_int_equal(lb_mount(d->node, target, "ext4", opts, err, sizeof err), 0);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 1);
        _cleanup_free_ char *info = NULL;
        assert_int_equal(lb_read_file("/proc/self/mountinfo", 1 << 20, &info, NULL), 0);
        char *line = strstr(info, target);
        assert_non_null(line);
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = '\0';
        assert_non_null(strstr(line, "errors=remount-ro"));

        /* a mount point that already is one (of something else) is refused */
        struct lb_blockdev *other = add_loop(f, 128);
        (void) format(other, LB_FS_EXT4);
        assert_int_equal(lb_mount(other->node, target, "ext4", opts, err, sizeof err), -EXDEV);
        assert_non_null(strstr(err, "another mount"));
        assert_int_equal(lb_mount_find_devno(other->devno, NULL), 0);

        /* unmounting never follows a symlink either */
        char alias[PATH_MAX];
        lbt_pathf(alias, "%s/mnt/alias", f->root);
        assert_int_equal(symlink(target, alias), 0);
        assert_true(lb_umount(alias, err, sizeof err) < 0);
        assert_non_null(strstr(err, "not mounted"));
        assert_int_equal(lb_mount_is_mounted_at(d->devno, target), 1);
        assert_int_equal(lb_mount_is_mounted_at(d->devno, alias), 0);
        assert_int_equal(lb_umount(target, err, sizeof err), 0);
}


/* ---- the same device in other mount namespaces ---- */

static const struct lb_ns_mount *find_in(const struct lb_ns_mounts *m, uint64_t ns) {
        for (size_t i = 0; i < m->n; i++)
                if (m->items[i].ns == ns)
                        return &m->items[i];
        return NULL;
}

static void test_mountns_unmounts_a_copy_in_another_namespace(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 512);
        char err[512] = "", opts[128], target[PATH_MAX];

        (void) format(d, LB_FS_XFS);
        assert_int_equal(lb_mount_options("xfs", true, opts, sizeof opts), 0);
        mnt_path(f, target, "recovery/vol-0123456789abcdef0");
        assert_int_equal(lb_mount(d->node, target, "xfs", opts, err, sizeof err), 0);
        struct ns_holder *h = start_holder(f, NULL);

        _cleanup_ns_mounts_ struct lb_ns_mounts m = { 0 };
        assert_int_equal(lb_mountns_find(d->devno, &m), 0);
        assert_true(m.namespaces >= 2);
        assert_int_equal(m.n, 2);
        assert_true(m.items[0].own);
        assert_string_equal(m.items[0].target, target);
        const struct lb_ns_mount *other = find_in(&m, ns_of(h->pid));
        assert_non_null(other);
        assert_false(other->own);
        assert_string_equal(other->target, target);
        assert_true(other->mnt_id != m.items[0].mnt_id);

        /* the host unmount leaves the copy, and the device claimed */
        assert_int_equal(lb_umount(target, err, sizeof err), 0);
        lb_ns_mounts_done(&m);
        assert_int_equal(lb_mountns_find(d->devno, &m), 0);
        assert_int_equal(m.n, 1);
        assert_false(m.items[0].own);
        assert_int_equal(lb_device_claimed(d->node, d->devno), 1);

        /* unmounted in its namespace: gone everywhere; the holder lives on, nothing signalled */
        assert_int_equal(lb_mountns_umount(&m.items[0], d->devno, err, sizeof err), 0);
        lb_ns_mounts_done(&m);
        assert_int_equal(lb_mountns_find(d->devno, &m), 0);
        assert_int_equal(m.n, 0);
        assert_int_equal(lb_device_claimed(d->node, d->devno), 0);
        assert_int_equal(kill(h->pid, 0), 0);
        int status;
        assert_int_equal(waitpid(h->pid, &status, WNOHANG), 0);
}

static void test_mountns_busy_copy_names_its_holder(void **state) {
        struct fx *f = *state;
        struct lb_blockdev *d = add_loop(f, 512);
        char err[512] = "", opts[128], target[PATH_MAX], file[PATH_MAX];

        (void) format(d, LB_FS_XFS);
        assert_int_equal(lb_mount_options("xfs", true, opts, sizeof opts), 0);
        mnt_path(f, target, "recovery/vol-0fedcba9876543210");
        assert_int_equal(lb_mount(d->node, target, "xfs", opts, err, sizeof err), 0);
        lbt_pathf(file, "%s/s3/buffer.q0123.log.meta", target);
        lbt_write_text(file, "{}\n");
        struct ns_holder *h = start_holder(f, file);
        assert_int_equal(lb_umount(target, err, sizeof err), 0);

        _cleanup_ns_mounts_ struct lb_ns_mounts m = { 0 };
        assert_int_equal(lb_mountns_find(d->devno, &m), 0);
        assert_int_equal(m.n, 1);
        err[0] = '\0';
        assert_int_equal(lb_mountns_umount(&m.items[0], d->devno, err, sizeof err), -EBUSY);
        assert_non_null(strstr(err, "target is busy"));

        struct lb_holder hs[4];
        size_t total = 0;
        assert_int_equal(lb_device_holders(d->devno, hs, ELEMENTSOF(hs), &total), 0);
        assert_int_equal(total, 1);
        assert_int_equal(hs[0].pid, h->pid);
        assert_int_equal(hs[0].ns, ns_of(h->pid));
        assert_true(hs[0].comm[0] != '\0');
        assert_int_equal(lb_device_claimed(d->node, d->devno), 1);
        assert_int_equal(kill(h->pid, 0), 0); /* still there: nothing is killed */

        /* a mount that changed since the scan is not touched */
        struct lb_ns_mount stale = m.items[0];
        stale.mnt_id++;
        assert_int_equal(lb_mountns_umount(&stale, d->devno, err, sizeof err), -ESTALE);

        /* once the file is closed (the holder ends here), the device is free */
        holder_end(h);
        assert_int_equal(lb_device_holders(d->devno, hs, ELEMENTSOF(hs), &total), 0);
        assert_int_equal(total, 0);
        assert_int_equal(lb_device_claimed(d->node, d->devno), 0);
}

static void test_mount_options(void **state) {
        (void) state;
        char b[128];
        /* another instance's ext4 superblock may ask for errors=panic: the mount overrides it */
        assert_int_equal(lb_mount_options("ext4", true, b, sizeof b), 0);
        assert_string_equal(b, "nodev,nosuid,noexec,noatime,errors=remount-ro");
        assert_int_equal(lb_mount_options("ext4", false, b, sizeof b), 0);
        assert_string_equal(b, "nodev,nosuid,noexec,noatime");
        assert_int_equal(lb_mount_options("xfs", true, b, sizeof b), 0);
        assert_string_equal(b, "nodev,nosuid,noexec,noatime,nouuid");
        assert_int_equal(lb_mount_options("btrfs", false, b, sizeof b), -EINVAL);
        assert_int_equal(lb_mount_options(NULL, false, b, sizeof b), -EINVAL);
        assert_int_equal(lb_mount_options("xfs", true, b, 10), -ENAMETOOLONG);
}

static void test_probe_result_strings(void **state) {
        (void) state;
        assert_string_equal(lb_probe_result_to_string(LB_PROBE_FILESYSTEM), "filesystem");
        assert_string_equal(lb_probe_result_to_string(LB_PROBE_BLANK), "blank");
        assert_string_equal(lb_probe_result_to_string(LB_PROBE_PARTITION_TABLE), "partition table");
        assert_string_equal(lb_probe_result_to_string(LB_PROBE_AMBIGUOUS), "ambiguous");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mount_options),
                cmocka_unit_test(test_probe_result_strings),
                cmocka_unit_test_setup_teardown(test_probe_blank, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mkfs_xfs_probe_and_verify, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mkfs_ext4_probe, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mkfs_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_probe_partition_table, setup, teardown),
                cmocka_unit_test_setup_teardown(test_probe_ambivalent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_probe_unsupported, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mount_verify_umount, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mount_xfs_same_uuid_needs_nouuid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mount_refuses_regular_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mount_failure_message, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mount_never_follows_a_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mountns_unmounts_a_copy_in_another_namespace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mountns_busy_copy_names_its_holder, setup, teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, NULL);
}
