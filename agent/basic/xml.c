/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <expat.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lifeboat/basic/xml.h"

/*
 * EC2 answers are small documents without DTDs, so the parser refuses any
 * DOCTYPE (no entity tricks) and caps nesting and node count: a hostile or
 * broken peer cannot make us build an unbounded tree.
 */
#define XML_MAX_DEPTH 64
#define XML_MAX_NODES 500000

/* The public node plus what only the builder needs. */
struct xml_node_priv {
        struct lb_xml_node node;        /* first member: a node pointer is a priv pointer */
        struct lb_xml_node *last_child;
        size_t text_len;
        size_t text_cap;
};

static struct xml_node_priv *node_priv(struct lb_xml_node *n) {
        return (struct xml_node_priv *) ((char *) n - offsetof(struct xml_node_priv, node));
}

struct xml_builder {
        XML_Parser parser;
        struct lb_xml_node *root;
        struct lb_xml_node *current;    /* the open element, NULL outside the root */
        unsigned depth;
        size_t n_nodes;
        int error;                      /* set by a handler before it stops the parser */
};

static void builder_fail(struct xml_builder *b, int error) {
        if (b->error == 0)
                b->error = error;
        (void) XML_StopParser(b->parser, XML_FALSE);
}

/* "ec2:volumeId" -> "volumeId"; with no prefix the name is kept. */
static const char *local_name(const char *name) {
        const char *colon = strrchr(name, ':');
        return colon ? colon + 1 : name;
}

static struct lb_xml_node *node_new(const char *name) {
        struct xml_node_priv *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        p->node.name = strdup(local_name(name));
        p->node.text = calloc(1, 1);
        if (!p->node.name || !p->node.text) {
                free(p->node.name);
                free(p->node.text);
                free(p);
                return NULL;
        }
        p->text_cap = 1;
        return &p->node;
}

static void on_start(void *userdata, const XML_Char *name, const XML_Char **attrs) {
        struct xml_builder *b = userdata;

        if (b->error != 0)
                return;
        if (b->depth >= XML_MAX_DEPTH || b->n_nodes >= XML_MAX_NODES) {
                builder_fail(b, -EBADMSG);
                return;
        }

        struct lb_xml_node *n = node_new(name);
        if (!n) {
                builder_fail(b, -ENOMEM);
                return;
        }
        if (b->current) {
                struct xml_node_priv *parent = node_priv(b->current);
                n->parent = b->current;
                if (parent->last_child)
                        parent->last_child->next = n;
                else
                        b->current->first_child = n;
                parent->last_child = n;
        } else
                b->root = n;    /* expat allows exactly one root element */

        b->current = n;
        b->depth++;
        b->n_nodes++;
}

static void on_end(void *userdata, const XML_Char *name) {
        struct xml_builder *b = userdata;

        if (b->error != 0 || !b->current)
                return;
        b->current = b->current->parent;
        b->depth--;
}

static void on_text(void *userdata, const XML_Char *s, int len) {
        struct xml_builder *b = userdata;

        /* Character data outside the root element is only white space; expat rejects the rest. */
        if (b->error != 0 || !b->current || len <= 0)
                return;

        struct xml_node_priv *p = node_priv(b->current);
        size_t add = (size_t) len;
        if (add > SIZE_MAX - p->text_len - 1) {
                builder_fail(b, -ENOMEM);
                return;
        }
        size_t need = p->text_len + add + 1;
        if (need > p->text_cap) {
                size_t ncap = p->text_cap < 16 ? 16 : p->text_cap;
                while (ncap < need)
                        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
                char *t = realloc(p->node.text, ncap);
                if (!t) {
                        builder_fail(b, -ENOMEM);
                        return;
                }
                p->node.text = t;
                p->text_cap = ncap;
        }
        memcpy(p->node.text + p->text_len, s, add);
        p->text_len += add;
        p->node.text[p->text_len] = '\0';
}

static void on_doctype(void *userdata, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset) {
        /* No EC2 answer has a DTD; refusing them rules out entity expansion games. */
        builder_fail(userdata, -EBADMSG);
}

static void on_entity_decl(void *userdata, const XML_Char *name, int is_parameter, const XML_Char *value,
                           int value_len, const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
                           const XML_Char *notation) {
        builder_fail(userdata, -EBADMSG);
}

void lb_xml_free(struct lb_xml_node *root) {
        /* Siblings iteratively, children recursively: recursion depth is capped by XML_MAX_DEPTH. */
        while (root) {
                struct lb_xml_node *next = root->next;
                lb_xml_free(root->first_child);
                free(root->name);
                free(root->text);
                free(node_priv(root));
                root = next;
        }
}

void lb_xml_free_secret(struct lb_xml_node *root) {
        for (struct lb_xml_node *n = root; n; n = n->next) {
                lb_xml_free_secret(n->first_child);
                n->first_child = NULL;
                if (n->text)
                        explicit_bzero(n->text, strlen(n->text));
        }
        lb_xml_free(root);
}

int lb_xml_parse(const char *buf, size_t len, struct lb_xml_node **ret_root) {
        if (!buf && len > 0)
                return -EINVAL;
        if (len > INT_MAX)
                return -EFBIG;

        struct xml_builder b = {};
        b.parser = XML_ParserCreate(NULL);
        if (!b.parser)
                return -ENOMEM;

        XML_SetUserData(b.parser, &b);
        XML_SetElementHandler(b.parser, on_start, on_end);
        XML_SetCharacterDataHandler(b.parser, on_text);
        XML_SetStartDoctypeDeclHandler(b.parser, on_doctype);
        XML_SetEntityDeclHandler(b.parser, on_entity_decl);

        enum XML_Status status = XML_Parse(b.parser, buf ? buf : "", (int) len, XML_TRUE);
        int r = 0;
        if (b.error != 0)
                r = b.error;
        else if (status != XML_STATUS_OK || !b.root)
                r = -EBADMSG;
        XML_ParserFree(b.parser);

        if (r < 0) {
                lb_xml_free(b.root);
                return r;
        }
        *ret_root = b.root;
        return 0;
}

const struct lb_xml_node *lb_xml_child(const struct lb_xml_node *n, const char *name) {
        if (!n || !name)
                return NULL;
        for (const struct lb_xml_node *c = n->first_child; c; c = c->next)
                if (streq(c->name, name))
                        return c;
        return NULL;
}

const char *lb_xml_child_text(const struct lb_xml_node *n, const char *name) {
        const struct lb_xml_node *c = lb_xml_child(n, name);
        return c ? c->text : NULL;
}

const struct lb_xml_node *lb_xml_path(const struct lb_xml_node *n, const char *path) {
        if (!path)
                return NULL;

        const char *p = path;
        while (n && *p) {
                const char *slash = strchr(p, '/');
                size_t seg = slash ? (size_t) (slash - p) : strlen(p);
                if (seg > 0) {
                        const struct lb_xml_node *found = NULL;
                        for (const struct lb_xml_node *c = n->first_child; c; c = c->next)
                                if (strlen(c->name) == seg && memcmp(c->name, p, seg) == 0) {
                                        found = c;
                                        break;
                                }
                        n = found;
                }
                p += seg;
                if (*p == '/')
                        p++;
        }
        return n;
}
