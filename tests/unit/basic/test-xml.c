/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lifeboat/basic/util.h"
#include "lifeboat/basic/xml.h"

static int parse_str(const char *s, struct lb_xml_node **ret) {
        return lb_xml_parse(s, strlen(s), ret);
}

static void test_tree_and_namespaces(void **state) {
        static const char doc[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
                "  <requestId>req-1</requestId>\n"
                "  <volumeSet>\n"
                "    <item><volumeId>vol-1</volumeId></item>\n"
                "    <item><volumeId>vol-2</volumeId><size>8</size></item>\n"
                "  </volumeSet>\n"
                "</DescribeVolumesResponse>\n";
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        assert_int_equal(parse_str(doc, &root), 0);
        assert_non_null(root);
        assert_string_equal(root->name, "DescribeVolumesResponse");
        assert_null(root->parent);
        assert_string_equal(lb_xml_child_text(root, "requestId"), "req-1");

        const struct lb_xml_node *set = lb_xml_child(root, "volumeSet");
        assert_non_null(set);
        assert_ptr_equal(set->parent, root);
        const struct lb_xml_node *first = set->first_child;
        assert_non_null(first);
        assert_string_equal(first->name, "item");
        assert_string_equal(lb_xml_child_text(first, "volumeId"), "vol-1");
        assert_non_null(first->next);
        assert_string_equal(lb_xml_child_text(first->next, "volumeId"), "vol-2");
        assert_string_equal(lb_xml_child_text(first->next, "size"), "8");
        assert_null(first->next->next);

        /* Paths follow the first match at each step. */
        const struct lb_xml_node *v = lb_xml_path(root, "volumeSet/item/volumeId");
        assert_non_null(v);
        assert_string_equal(v->text, "vol-1");
        assert_null(lb_xml_path(root, "volumeSet/item/size"));
        assert_null(lb_xml_path(root, "nope/item"));
        assert_ptr_equal(lb_xml_path(root, ""), root);
        assert_null(lb_xml_child(root, "volumeId")); /* direct children only */
        assert_null(lb_xml_child_text(root, "missing"));
        assert_null(lb_xml_child(NULL, "x"));
}

/* The wiping free takes a whole tree (siblings and children; the sanitizer pass sees leaks),
 * and an empty one. */
static void test_free_secret(void **state) {
        (void) state;
        static const char doc[] = "<R><C><SecretAccessKey>s3cr3t</SecretAccessKey><SessionToken>t0k</SessionToken>"
                                  "</C><D>x</D></R>";
        struct lb_xml_node *root = NULL;
        assert_int_equal(lb_xml_parse(doc, sizeof doc - 1, &root), 0);
        assert_string_equal(lb_xml_child_text(lb_xml_child(root, "C"), "SessionToken"), "t0k");
        lb_xml_free_secret(root);
        lb_xml_free_secret(NULL);
}

static void test_prefixes_stripped(void **state) {
        static const char doc[] = "<ec2:Response xmlns:ec2=\"http://ec2.amazonaws.com/doc/2016-11-15/\" "
                                  "xmlns:x=\"urn:x\"><ec2:Errors><x:Error><Code>Throttling</Code>"
                                  "</x:Error></ec2:Errors></ec2:Response>";
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        assert_int_equal(parse_str(doc, &root), 0);
        assert_string_equal(root->name, "Response");
        const struct lb_xml_node *code = lb_xml_path(root, "Errors/Error/Code");
        assert_non_null(code);
        assert_string_equal(code->text, "Throttling");
}

static void test_text(void **state) {
        static const char doc[] = "<a><empty/><also></also><ent>a &amp; b &lt;c&gt; &#x20AC;</ent>"
                                  "<cdata><![CDATA[<not markup> & ]]>tail</cdata><u>日本</u></a>";
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        assert_int_equal(parse_str(doc, &root), 0);
        /* Text is never NULL, even for empty elements. */
        assert_non_null(root->text);
        assert_string_equal(lb_xml_child_text(root, "empty"), "");
        assert_string_equal(lb_xml_child_text(root, "also"), "");
        assert_string_equal(lb_xml_child_text(root, "ent"), "a & b <c> \xe2\x82\xac");
        assert_string_equal(lb_xml_child_text(root, "cdata"), "<not markup> & tail");
        assert_string_equal(lb_xml_child_text(root, "u"), "日本");
}

static void test_long_text_in_pieces(void **state) {
        /* expat hands long character data over in several calls: it must be concatenated. */
        _cleanup_buf_ struct lb_buf b = {};
        assert_int_equal(lb_buf_append_str(&b, "<a><t>"), 0);
        for (int i = 0; i < 20000; i++)
                assert_int_equal(lb_buf_append_str(&b, i % 100 == 0 ? "&amp;" : "x"), 0);
        assert_int_equal(lb_buf_append_str(&b, "</t></a>"), 0);

        _cleanup_xml_ struct lb_xml_node *root = NULL;
        assert_int_equal(lb_xml_parse(b.data, b.len, &root), 0);
        const char *t = lb_xml_child_text(root, "t");
        assert_non_null(t);
        assert_int_equal(strlen(t), 20000);
        assert_int_equal(t[0], '&');
        assert_int_equal(t[1], 'x');
        assert_int_equal(t[100], '&');
}

static void test_malformed(void **state) {
        static const char *const bad[] = {
                "",
                "   ",
                "not xml at all",
                "<a>",
                "<a><b></a></b>",
                "<a></b>",
                "<a/><b/>",                     /* two roots */
                "<a>text</a>trailing",
                "<a x=1/>",                     /* unquoted attribute */
                "<a>&unknown;</a>",             /* undeclared entity */
                "<Response><Errors><Error><Code>Throttl",
                "<?xml version=\"1.0\"?>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_xml_node *root = (struct lb_xml_node *) 0x1;
                assert_int_equal(parse_str(bad[i], &root), -EBADMSG);
                assert_ptr_equal(root, (struct lb_xml_node *) 0x1); /* untouched on failure */
        }

        /* An embedded NUL is not XML. */
        static const char nul[] = "<a>x\0y</a>";
        struct lb_xml_node *root = NULL;
        assert_int_equal(lb_xml_parse(nul, sizeof nul - 1, &root), -EBADMSG);
        assert_null(root);
}

static void test_every_prefix_of_a_document_fails(void **state) {
        static const char doc[] = "<DetachVolumeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                                  "<requestId>r</requestId><volumeId>vol-1</volumeId>"
                                  "<status>detaching</status></DetachVolumeResponse>";
        size_t n = strlen(doc);
        for (size_t len = 0; len < n; len++) {
                struct lb_xml_node *root = NULL;
                assert_int_equal(lb_xml_parse(doc, len, &root), -EBADMSG);
                assert_null(root);
        }
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        assert_int_equal(lb_xml_parse(doc, n, &root), 0);
}

static void test_doctype_refused(void **state) {
        static const char laughs[] = "<?xml version=\"1.0\"?>\n"
                                     "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                                     "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\n"
                                     "<lolz>&lol2;</lolz>";
        struct lb_xml_node *root = NULL;
        assert_int_equal(parse_str(laughs, &root), -EBADMSG);
        assert_null(root);

        static const char external[] = "<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>";
        assert_int_equal(parse_str(external, &root), -EBADMSG);
        assert_null(root);
}

static int nested(unsigned depth, struct lb_xml_node **ret) {
        _cleanup_buf_ struct lb_buf b = {};
        for (unsigned i = 0; i < depth; i++)
                assert_int_equal(lb_buf_append_str(&b, "<n>"), 0);
        for (unsigned i = 0; i < depth; i++)
                assert_int_equal(lb_buf_append_str(&b, "</n>"), 0);
        return lb_xml_parse(b.data, b.len, ret);
}

static void test_depth_cap(void **state) {
        struct lb_xml_node *root = NULL;
        assert_int_equal(nested(64, &root), 0);
        lb_xml_free(root);
        root = NULL;
        assert_int_equal(nested(65, &root), -EBADMSG);
        assert_null(root);
        assert_int_equal(nested(10000, &root), -EBADMSG);
        assert_null(root);
}

static int flat(size_t children, struct lb_xml_node **ret) {
        _cleanup_buf_ struct lb_buf b = {};
        assert_int_equal(lb_buf_append_str(&b, "<r>"), 0);
        for (size_t i = 0; i < children; i++)
                assert_int_equal(lb_buf_append_str(&b, "<i/>"), 0);
        assert_int_equal(lb_buf_append_str(&b, "</r>"), 0);
        return lb_xml_parse(b.data, b.len, ret);
}

static void test_node_cap(void **state) {
        struct lb_xml_node *root = NULL;
        /* 1 root + 499 999 children = the cap. */
        assert_int_equal(flat(499999, &root), 0);
        size_t n = 0;
        for (const struct lb_xml_node *c = root->first_child; c; c = c->next)
                n++;
        assert_int_equal(n, 499999);
        lb_xml_free(root);
        root = NULL;
        assert_int_equal(flat(500000, &root), -EBADMSG);
        assert_null(root);
}

static void test_free_null(void **state) {
        lb_xml_free(NULL);
        _cleanup_xml_ struct lb_xml_node *none = NULL;
        assert_null(none);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tree_and_namespaces),
                cmocka_unit_test(test_prefixes_stripped),
                cmocka_unit_test(test_free_secret),
                cmocka_unit_test(test_text),
                cmocka_unit_test(test_long_text_in_pieces),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_every_prefix_of_a_document_fails),
                cmocka_unit_test(test_doctype_refused),
                cmocka_unit_test(test_depth_cap),
                cmocka_unit_test(test_node_cap),
                cmocka_unit_test(test_free_null),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
