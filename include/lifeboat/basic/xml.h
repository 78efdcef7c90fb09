/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "lifeboat/basic/macro.h"

/*
 * A small element tree built with expat. EC2 answers are small and their
 * element order may vary, so typed parsers walk this tree by name instead of
 * keeping a state machine per answer. Namespaces are dropped from names.
 */
struct lb_xml_node {
        char *name;                     /* local name, without namespace */
        char *text;                     /* concatenated character data, never NULL */
        struct lb_xml_node *parent;
        struct lb_xml_node *first_child;
        struct lb_xml_node *next;       /* next sibling */
};

/* Parses a whole document. -EBADMSG on malformed XML. */
int lb_xml_parse(const char *buf, size_t len, struct lb_xml_node **ret_root);
void lb_xml_free(struct lb_xml_node *root);
/* lb_xml_free(), the texts wiped first: for a document that holds credentials. */
void lb_xml_free_secret(struct lb_xml_node *root);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_xml_node *, lb_xml_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_xml_node *, lb_xml_free_secret);
#define _cleanup_xml_ _cleanup_(lb_xml_freep)

/* The first direct child with this local name, or NULL. */
const struct lb_xml_node *lb_xml_child(const struct lb_xml_node *n, const char *name);
/* Text of the direct child, or NULL when absent. */
const char *lb_xml_child_text(const struct lb_xml_node *n, const char *name);
/* Follows a '/'-separated path of child names: "Errors/Error/Code". */
const struct lb_xml_node *lb_xml_path(const struct lb_xml_node *n, const char *path);
