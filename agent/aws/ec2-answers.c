/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/retry.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/xml.h"

/*
 * EC2 Query API answers (version 2016-11-15) into typed structs. Element
 * order may vary and unknown elements are ignored; the namespace on the root
 * is dropped by the XML layer. Values that do not fit their fixed-size fields
 * are rejected, never truncated: a cut volume id would name another volume.
 */


/* ---- helpers ---- */

/* Copies a value into a fixed field; a value that does not fit is a bad answer. */
static int copy_field(char *dst, size_t size, const char *src) {
        if (!src) {
                dst[0] = '\0';
                return 0;
        }
        return lb_strscpy(dst, size, src) < 0 ? -EBADMSG : 0;
}

static int copy_child(const struct lb_xml_node *n, const char *name, char *dst, size_t size) {
        return copy_field(dst, size, lb_xml_child_text(n, name));
}

static int copy_required_child(const struct lb_xml_node *n, const char *name, char *dst, size_t size) {
        const char *v = lb_xml_child_text(n, name);
        if (isempty(v))
                return -EBADMSG;
        return copy_field(dst, size, v);
}

/* An absent or empty element leaves the default. */
static int child_bool(const struct lb_xml_node *n, const char *name, bool *ret) {
        const char *v = lb_xml_child_text(n, name);
        if (isempty(v))
                return 0;
        if (streq(v, "true"))
                *ret = true;
        else if (streq(v, "false"))
                *ret = false;
        else
                return -EBADMSG;
        return 0;
}

static int child_uint(const struct lb_xml_node *n, const char *name, uint64_t *ret) {
        const char *v = lb_xml_child_text(n, name);
        if (isempty(v))
                return 0;
        return lb_parse_uint(v, 0, UINT64_MAX, ret) < 0 ? -EBADMSG : 0;
}

static size_t count_items(const struct lb_xml_node *set) {
        size_t n = 0;
        if (set)
                for (const struct lb_xml_node *c = set->first_child; c; c = c->next)
                        if (streq(c->name, "item"))
                                n++;
        return n;
}

/* A tagSet into tags (allocated) and its count; on failure what was built is left for the
 * caller's cleanup. */
static int parse_tags(const struct lb_xml_node *set, struct lb_tag **tags, size_t *n_tags) {
        size_t n = count_items(set);
        if (n == 0)
                return 0;
        *tags = calloc(n, sizeof **tags);
        if (!*tags)
                return -ENOMEM;
        for (const struct lb_xml_node *c = set->first_child; c; c = c->next) {
                if (!streq(c->name, "item"))
                        continue;
                const char *key = lb_xml_child_text(c, "key");
                if (isempty(key))
                        return -EBADMSG;
                struct lb_tag *t = &(*tags)[(*n_tags)++];
                t->key = strdup(key);
                t->value = strdup(strempty(lb_xml_child_text(c, "value")));
                if (!t->key || !t->value)
                        return -ENOMEM;
        }
        return 0;
}

static void free_tags(struct lb_tag **tags, size_t *n_tags) {
        for (size_t i = 0; i < *n_tags; i++) {
                free((*tags)[i].key);
                free((*tags)[i].value);
        }
        free(*tags);
        *tags = NULL;
        *n_tags = 0;
}

static const char *find_tag(const struct lb_tag *tags, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (streq(tags[i].key, key))
                        return tags[i].value;
        return NULL;
}

/* Parses and checks the root element's name; an error document is never a valid answer. */
static int parse_root(const char *buf, size_t len, const char *expected, struct lb_xml_node **ret) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = lb_xml_parse(buf, len, &root);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (lb_aws_xml_is_error(root) || (expected && !streq(root->name, expected)))
                return -EBADMSG;
        *ret = TAKE_PTR(root);
        return 0;
}

/* ---- errors ---- */

/* ---- volumes ---- */

void lb_volume_done(struct lb_volume *v) {
        free_tags(&v->tags, &v->n_tags);
        free(v->attachments);
        v->attachments = NULL;
        v->n_attachments = 0;
}

void lb_volume_list_done(struct lb_volume_list *l) {
        for (size_t i = 0; i < l->n; i++)
                lb_volume_done(&l->items[i]);
        free(l->items);
        l->items = NULL;
        l->n = 0;
}

/* Moves src's n_src items of size each to the end of dst's (the list types differ only by
 * their item); src is left empty. On failure both are as they were. */
static int items_concat(void **dst, size_t *n_dst, void **src, size_t *n_src, size_t size) {
        if (*n_src == 0) {
                free(*src);
                *src = NULL;
                return 0;
        }
        if (*n_dst > SIZE_MAX / size - *n_src)
                return -ENOMEM;
        char *items = realloc(*dst, (*n_dst + *n_src) * size);
        if (!items)
                return -ENOMEM;
        memcpy(items + *n_dst * size, *src, *n_src * size);
        *dst = items;
        *n_dst += *n_src;
        free(*src);
        *src = NULL;
        *n_src = 0;
        return 0;
}

int lb_volume_list_concat(struct lb_volume_list *dst, struct lb_volume_list *src) {
        void *d = dst->items, *x = src->items;
        int r = items_concat(&d, &dst->n, &x, &src->n, sizeof *dst->items);
        dst->items = d;
        src->items = x;
        return r;
}

const char *lb_volume_tag(const struct lb_volume *v, const char *key) {
        return find_tag(v->tags, v->n_tags, key);
}

const struct lb_attachment *lb_volume_attachment_for(const struct lb_volume *v, const char *instance_id) {
        for (size_t i = 0; i < v->n_attachments; i++)
                if (streq(v->attachments[i].instance_id, instance_id))
                        return &v->attachments[i];
        return NULL;
}

const struct lb_volume *lb_volume_list_find(const struct lb_volume_list *l, const char *volume_id) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->items[i].id, volume_id))
                        return &l->items[i];
        return NULL;
}

/* The VolumeAttachment shape: inside attachmentSet items and at the root of Attach/DetachVolume answers. */
static int parse_attachment_node(const struct lb_xml_node *n, struct lb_attachment *a) {
        int r;
        if ((r = copy_child(n, "volumeId", a->volume_id, sizeof a->volume_id)) < 0 ||
            (r = copy_child(n, "instanceId", a->instance_id, sizeof a->instance_id)) < 0 ||
            (r = copy_child(n, "device", a->device, sizeof a->device)) < 0 ||
            (r = copy_child(n, "status", a->state, sizeof a->state)) < 0 ||
            (r = copy_child(n, "attachTime", a->attach_time, sizeof a->attach_time)) < 0 ||
            (r = child_bool(n, "deleteOnTermination", &a->delete_on_termination)) < 0)
                return r;
        return 0;
}

static int parse_attachments(const struct lb_xml_node *set, struct lb_volume *v) {
        size_t n = count_items(set);
        if (n == 0)
                return 0;
        v->attachments = calloc(n, sizeof *v->attachments);
        if (!v->attachments)
                return -ENOMEM;
        for (const struct lb_xml_node *c = set->first_child; c; c = c->next) {
                if (!streq(c->name, "item"))
                        continue;
                struct lb_attachment *a = &v->attachments[v->n_attachments++];
                int r = parse_attachment_node(c, a);
                if (r < 0)
                        return r;
                /* The volume id is implied by the enclosing volume when left out. */
                if (isempty(a->volume_id))
                        memcpy(a->volume_id, v->id, sizeof a->volume_id);
                else if (!streq(a->volume_id, v->id))
                        return -EBADMSG;
        }
        return 0;
}

static int parse_volume(const struct lb_xml_node *n, struct lb_volume *v) {
        int r;
        if ((r = copy_required_child(n, "volumeId", v->id, sizeof v->id)) < 0 ||
            (r = child_uint(n, "size", &v->size_gib)) < 0 ||
            (r = copy_child(n, "snapshotId", v->snapshot_id, sizeof v->snapshot_id)) < 0 ||
            (r = copy_child(n, "availabilityZone", v->availability_zone, sizeof v->availability_zone)) < 0 ||
            (r = copy_child(n, "status", v->state, sizeof v->state)) < 0 ||
            (r = copy_child(n, "createTime", v->create_time, sizeof v->create_time)) < 0 ||
            (r = copy_child(n, "volumeType", v->type, sizeof v->type)) < 0 ||
            (r = child_bool(n, "encrypted", &v->encrypted)) < 0 ||
            (r = child_bool(n, "multiAttachEnabled", &v->multi_attach)) < 0 ||
            (r = child_uint(n, "iops", &v->iops)) < 0 ||
            (r = child_uint(n, "throughput", &v->throughput)) < 0)
                return r;

        r = parse_attachments(lb_xml_child(n, "attachmentSet"), v);
        if (r < 0)
                return r;
        return parse_tags(lb_xml_child(n, "tagSet"), &v->tags, &v->n_tags);
}

int lb_ec2_parse_volumes(const char *buf, size_t len, struct lb_volume_list *ret, char **ret_next_token) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = parse_root(buf, len, "DescribeVolumesResponse", &root);
        if (r < 0)
                return r;

        /* AWS always sends <volumeSet/>; a missing one is read as an empty page. */
        const struct lb_xml_node *set = lb_xml_child(root, "volumeSet");
        _cleanup_volume_list_ struct lb_volume_list list = {};
        size_t n = count_items(set);
        if (n > 0) {
                list.items = calloc(n, sizeof *list.items);
                if (!list.items)
                        return -ENOMEM;
                for (const struct lb_xml_node *c = set->first_child; c; c = c->next) {
                        if (!streq(c->name, "item"))
                                continue;
                        /* Counted before parsing so lb_volume_list_done frees a half-built volume. */
                        struct lb_volume *v = &list.items[list.n++];
                        r = parse_volume(c, v);
                        if (r < 0)
                                /* cppcheck-suppress memleak ; cppcheck does not know __attribute__((cleanup)) */
                                return r;
                }
        }

        _cleanup_free_ char *token = NULL;
        const char *t = lb_xml_child_text(root, "nextToken");
        if (!isempty(t)) {
                token = strdup(t);
                if (!token)
                        return -ENOMEM;
        }

        *ret = list;
        list = (struct lb_volume_list) {};
        if (ret_next_token)
                *ret_next_token = TAKE_PTR(token);
        return 0;
}

/* ---- attach / detach, <return>, instances ---- */

int lb_ec2_parse_attachment(const char *buf, size_t len, struct lb_attachment *ret) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = parse_root(buf, len, NULL, &root);
        if (r < 0)
                return r;
        if (!streq(root->name, "AttachVolumeResponse") && !streq(root->name, "DetachVolumeResponse"))
                return -EBADMSG;

        struct lb_attachment a = {};
        r = parse_attachment_node(root, &a);
        if (r < 0)
                return r;
        if (isempty(a.volume_id))
                return -EBADMSG;
        *ret = a;
        return 0;
}

int lb_ec2_parse_return(const char *buf, size_t len) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = parse_root(buf, len, NULL, &root);
        if (r < 0)
                return r;
        const char *v = lb_xml_child_text(root, "return");
        if (!v || !streq(v, "true"))
                return -EBADMSG;
        return 0;
}

void lb_instance_done(struct lb_instance *i) {
        free(i->devices);
        i->devices = NULL;
        i->n_devices = 0;
}

static int parse_block_devices(const struct lb_xml_node *set, struct lb_instance *inst) {
        size_t n = count_items(set);
        if (n == 0)
                return 0;
        inst->devices = calloc(n, sizeof *inst->devices);
        if (!inst->devices)
                return -ENOMEM;
        for (const struct lb_xml_node *c = set->first_child; c; c = c->next) {
                if (!streq(c->name, "item"))
                        continue;
                /* Only EBS mappings matter; others have no volume. */
                const struct lb_xml_node *ebs = lb_xml_child(c, "ebs");
                if (!ebs || isempty(lb_xml_child_text(ebs, "volumeId")))
                        continue;
                struct lb_block_device *d = &inst->devices[inst->n_devices++];
                int r;
                if ((r = copy_child(c, "deviceName", d->device, sizeof d->device)) < 0 ||
                    (r = copy_child(ebs, "volumeId", d->volume_id, sizeof d->volume_id)) < 0 ||
                    (r = copy_child(ebs, "status", d->state, sizeof d->state)) < 0 ||
                    (r = child_bool(ebs, "deleteOnTermination", &d->delete_on_termination)) < 0)
                        return r;
        }
        return 0;
}

int lb_ec2_parse_instance(const char *buf, size_t len, struct lb_instance *ret) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = parse_root(buf, len, "DescribeInstancesResponse", &root);
        if (r < 0)
                return r;

        /* We only ever ask for one instance: take the first one there is. */
        const struct lb_xml_node *node = NULL;
        const struct lb_xml_node *reservations = lb_xml_child(root, "reservationSet");
        for (const struct lb_xml_node *res = reservations ? reservations->first_child : NULL; res && !node;
             res = res->next) {
                if (!streq(res->name, "item"))
                        continue;
                const struct lb_xml_node *instances = lb_xml_child(res, "instancesSet");
                for (const struct lb_xml_node *c = instances ? instances->first_child : NULL; c; c = c->next)
                        if (streq(c->name, "item")) {
                                node = c;
                                break;
                        }
        }
        if (!node)
                return -ENOENT;

        struct lb_instance inst = {};
        if ((r = copy_required_child(node, "instanceId", inst.id, sizeof inst.id)) < 0 ||
            (r = copy_field(inst.availability_zone, sizeof inst.availability_zone,
                            lb_xml_child_text(lb_xml_child(node, "placement"), "availabilityZone"))) < 0 ||
            (r = copy_child(node, "rootDeviceName", inst.root_device, sizeof inst.root_device)) < 0 ||
            (r = parse_block_devices(lb_xml_child(node, "blockDeviceMapping"), &inst)) < 0) {
                lb_instance_done(&inst);
                return r;
        }
        *ret = inst;
        return 0;
}

int lb_ec2_parse_created_volume(const char *buf, size_t len, struct lb_volume *ret) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = parse_root(buf, len, "CreateVolumeResponse", &root);
        if (r < 0)
                return r;
        struct lb_volume v = {};
        r = parse_volume(root, &v);
        if (r < 0) {
                lb_volume_done(&v);
                return r;
        }
        *ret = v;
        return 0;
}

/* ---- snapshots ---- */

void lb_snapshot_done(struct lb_snapshot *s) {
        free_tags(&s->tags, &s->n_tags);
}

void lb_snapshot_list_done(struct lb_snapshot_list *l) {
        for (size_t i = 0; i < l->n; i++)
                lb_snapshot_done(&l->items[i]);
        free(l->items);
        l->items = NULL;
        l->n = 0;
}

int lb_snapshot_list_concat(struct lb_snapshot_list *dst, struct lb_snapshot_list *src) {
        void *d = dst->items, *x = src->items;
        int r = items_concat(&d, &dst->n, &x, &src->n, sizeof *dst->items);
        dst->items = d;
        src->items = x;
        return r;
}

const char *lb_snapshot_tag(const struct lb_snapshot *s, const char *key) {
        return find_tag(s->tags, s->n_tags, key);
}

/* The Snapshot shape: inside snapshotSet items and at the root of a CreateSnapshot answer. */
static int parse_snapshot(const struct lb_xml_node *n, struct lb_snapshot *s) {
        int r;
        if ((r = copy_required_child(n, "snapshotId", s->id, sizeof s->id)) < 0 ||
            (r = copy_child(n, "volumeId", s->volume_id, sizeof s->volume_id)) < 0 ||
            (r = copy_required_child(n, "status", s->state, sizeof s->state)) < 0 ||
            (r = copy_child(n, "progress", s->progress, sizeof s->progress)) < 0 ||
            (r = copy_child(n, "startTime", s->start_time, sizeof s->start_time)) < 0 ||
            (r = child_uint(n, "volumeSize", &s->volume_size_gib)) < 0 ||
            (r = child_bool(n, "encrypted", &s->encrypted)) < 0)
                return r;
        return parse_tags(lb_xml_child(n, "tagSet"), &s->tags, &s->n_tags);
}

int lb_ec2_parse_snapshots(const char *buf, size_t len, struct lb_snapshot_list *ret, char **ret_next_token) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = parse_root(buf, len, "DescribeSnapshotsResponse", &root);
        if (r < 0)
                return r;

        const struct lb_xml_node *set = lb_xml_child(root, "snapshotSet");
        _cleanup_snapshot_list_ struct lb_snapshot_list list = {};
        size_t n = count_items(set);
        if (n > 0) {
                list.items = calloc(n, sizeof *list.items);
                if (!list.items)
                        return -ENOMEM;
                for (const struct lb_xml_node *c = set->first_child; c; c = c->next) {
                        if (!streq(c->name, "item"))
                                continue;
                        /* Counted before parsing so lb_snapshot_list_done frees a half-built one. */
                        r = parse_snapshot(c, &list.items[list.n++]);
                        if (r < 0)
                                /* cppcheck-suppress memleak ; cppcheck does not know __attribute__((cleanup)) */
                                return r;
                }
        }

        _cleanup_free_ char *token = NULL;
        const char *t = lb_xml_child_text(root, "nextToken");
        if (!isempty(t)) {
                token = strdup(t);
                if (!token)
                        return -ENOMEM;
        }

        *ret = list;
        list = (struct lb_snapshot_list) {};
        if (ret_next_token)
                *ret_next_token = TAKE_PTR(token);
        return 0;
}

int lb_ec2_parse_created_snapshot(const char *buf, size_t len, struct lb_snapshot *ret) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = parse_root(buf, len, "CreateSnapshotResponse", &root);
        if (r < 0)
                return r;
        struct lb_snapshot s = {};
        r = parse_snapshot(root, &s);
        if (r < 0) {
                lb_snapshot_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

/* ---- copies ---- */

static int copy_tags(const struct lb_tag *src, size_t n, struct lb_tag **ret) {
        struct lb_tag *t = calloc(n ? n : 1, sizeof *t);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                t[i].key = strdup(src[i].key);
                t[i].value = strdup(src[i].value ? src[i].value : "");
                if (!t[i].key || !t[i].value) {
                        for (size_t j = 0; j <= i; j++) {
                                free(t[j].key);
                                free(t[j].value);
                        }
                        free(t);
                        return -ENOMEM;
                }
        }
        *ret = t;
        return 0;
}

int lb_volume_copy(const struct lb_volume *v, struct lb_volume *ret) {
        struct lb_volume c = *v;
        c.attachments = NULL;
        c.tags = NULL;
        if (v->n_attachments > 0) {
                c.attachments = calloc(v->n_attachments, sizeof *c.attachments);
                if (!c.attachments)
                        return -ENOMEM;
                memcpy(c.attachments, v->attachments, v->n_attachments * sizeof *c.attachments);
        }
        if (v->n_tags > 0) {
                int r = copy_tags(v->tags, v->n_tags, &c.tags);
                if (r < 0) {
                        free(c.attachments);
                        return r;
                }
        }
        *ret = c;
        return 0;
}
