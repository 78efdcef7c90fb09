/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lifeboat/basic/macro.h"

/*
 * EC2's resources as its Query API (version 2016-11-15) describes them, and the parsers that
 * read its answers into them: buffers in, typed structs out. Element order may vary and
 * unknown elements are ignored. What lifeboat's tags mean is lifeboat/state/volume.h.
 */

/* ---- typed answers ---- */

struct lb_tag {
        char *key;
        char *value;
};

struct lb_attachment {
        char volume_id[32];
        char instance_id[32];
        char device[64];
        char state[16];         /* attaching | attached | detaching | detached | busy */
        char attach_time[40];
        bool delete_on_termination;
};

struct lb_volume {
        char id[32];
        uint64_t size_gib;
        char availability_zone[32];
        char state[16];         /* creating | available | in-use | deleting | deleted | error */
        char type[16];
        char create_time[40];
        char snapshot_id[32];
        bool encrypted;
        bool multi_attach;
        uint64_t iops;          /* 0 when EC2 does not say */
        uint64_t throughput;    /* MiB/s (gp3); 0 when EC2 does not say */
        struct lb_attachment *attachments;
        size_t n_attachments;
        struct lb_tag *tags;
        size_t n_tags;
};

struct lb_volume_list {
        struct lb_volume *items;
        size_t n;
};

/* Free the attachments and tags (and items); the struct is left empty. */
void lb_volume_done(struct lb_volume *v);
void lb_volume_list_done(struct lb_volume_list *l);
static inline void lb_volume_list_donep(struct lb_volume_list *l) {
        lb_volume_list_done(l);
}
#define _cleanup_volume_list_ _cleanup_(lb_volume_list_donep)
/* Moves the items of src to the end of dst. */
int lb_volume_list_concat(struct lb_volume_list *dst, struct lb_volume_list *src);
/* The value of tag key on the volume, or NULL. */
const char *lb_volume_tag(const struct lb_volume *v, const char *key);
/* A deep copy (attachments and tags duplicated); ret untouched on failure. */
int lb_volume_copy(const struct lb_volume *v, struct lb_volume *ret);
/* The attachment of this volume to instance_id, or NULL. */
const struct lb_attachment *lb_volume_attachment_for(const struct lb_volume *v, const char *instance_id);
/* The volume with this id in the list, or NULL. */
const struct lb_volume *lb_volume_list_find(const struct lb_volume_list *l, const char *volume_id);

/* A block device mapping of an instance (DescribeInstances). */
struct lb_block_device {
        char device[64];
        char volume_id[32];
        char state[16];
        bool delete_on_termination;
};
struct lb_instance {
        char id[32];
        char availability_zone[32];
        char root_device[64];
        struct lb_block_device *devices;
        size_t n_devices;
};
void lb_instance_done(struct lb_instance *i);

/* An EBS snapshot (DescribeSnapshots, CreateSnapshot). */
struct lb_snapshot {
        char id[32];
        char volume_id[32];     /* the volume it was taken of */
        char state[16];         /* pending | completed | error | recoverable | recovering */
        char progress[16];      /* "" or "NN%" as EC2 says it */
        char start_time[40];
        uint64_t volume_size_gib;
        bool encrypted;
        struct lb_tag *tags;
        size_t n_tags;
};

struct lb_snapshot_list {
        struct lb_snapshot *items;
        size_t n;
};

void lb_snapshot_done(struct lb_snapshot *s);
void lb_snapshot_list_done(struct lb_snapshot_list *l);
static inline void lb_snapshot_list_donep(struct lb_snapshot_list *l) {
        lb_snapshot_list_done(l);
}
#define _cleanup_snapshot_list_ _cleanup_(lb_snapshot_list_donep)
/* Moves the items of src to the end of dst. */
int lb_snapshot_list_concat(struct lb_snapshot_list *dst, struct lb_snapshot_list *src);
/* The value of tag key on the snapshot, or NULL. */
const char *lb_snapshot_tag(const struct lb_snapshot *s, const char *key);

/* ---- answer parsing (buffers in, typed structs out) ---- */

/* DescribeVolumes page; ret_next_token gets NULL on the last page. */
int lb_ec2_parse_volumes(const char *buf, size_t len, struct lb_volume_list *ret, char **ret_next_token);
/* An AttachVolume or DetachVolume answer. */
int lb_ec2_parse_attachment(const char *buf, size_t len, struct lb_attachment *ret);
/* Answers that carry <return>true</return>. -EBADMSG when it is missing or false. */
int lb_ec2_parse_return(const char *buf, size_t len);
/* The first instance of a DescribeInstances answer; -ENOENT when it lists none. */
int lb_ec2_parse_instance(const char *buf, size_t len, struct lb_instance *ret);
/* DescribeSnapshots page; ret_next_token gets NULL on the last page. */
int lb_ec2_parse_snapshots(const char *buf, size_t len, struct lb_snapshot_list *ret, char **ret_next_token);
/* A CreateSnapshot answer: the snapshot, directly under the root. */
int lb_ec2_parse_created_snapshot(const char *buf, size_t len, struct lb_snapshot *ret);
/* A CreateVolume answer: the volume, directly under the root (no attachments). */
int lb_ec2_parse_created_volume(const char *buf, size_t len, struct lb_volume *ret);
