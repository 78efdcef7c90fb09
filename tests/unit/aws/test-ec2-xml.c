/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/util.h"

/* Shaped like the answers EC2 sends (EC2 API reference, DescribeVolumes / DescribeInstances examples). */
static const char volumes_page1[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
        "    <requestId>5c3ad1a2-6e1c-4b7b-9d54-0f3b0EXAMPLE</requestId>\n"
        "    <volumeSet>\n"
        "        <item>\n"
        "            <volumeId>vol-0123456789abcdef0</volumeId>\n"
        "            <size>80</size>\n"
        "            <snapshotId/>\n"
        "            <availabilityZone>us-east-1a</availabilityZone>\n"
        "            <status>in-use</status>\n"
        "            <createTime>2026-01-15T10:21:14.000Z</createTime>\n"
        "            <attachmentSet>\n"
        "                <item>\n"
        "                    <volumeId>vol-0123456789abcdef0</volumeId>\n"
        "                    <instanceId>i-0abcdef1234567890</instanceId>\n"
        "                    <device>/dev/sdf</device>\n"
        "                    <status>attached</status>\n"
        "                    <attachTime>2026-01-15T10:22:01.000Z</attachTime>\n"
        "                    <deleteOnTermination>false</deleteOnTermination>\n"
        "                </item>\n"
        "            </attachmentSet>\n"
        "            <tagSet>\n"
        "                <item>\n"
        "                    <key>lifeboat:group</key>\n"
        "                    <value>prod-cluster</value>\n"
        "                </item>\n"
        "                <item>\n"
        "                    <key>Name</key>\n"
        "                    <value/>\n"
        "                </item>\n"
        "                <item>\n"
        "                    <key>lifeboat:state</key>\n"
        "                </item>\n"
        "            </tagSet>\n"
        "            <volumeType>gp3</volumeType>\n"
        "            <iops>3000</iops>\n"
        "            <encrypted>true</encrypted>\n"
        "            <kmsKeyId>arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab</kmsKeyId>\n"
        "            <multiAttachEnabled>false</multiAttachEnabled>\n"
        "            <throughput>125</throughput>\n"
        "        </item>\n"
        "        <item>\n"
        "            <volumeId>vol-049df61146c4d7901</volumeId>\n"
        "            <size>100</size>\n"
        "            <snapshotId>snap-1234567890abcdef0</snapshotId>\n"
        "            <availabilityZone>us-east-1a</availabilityZone>\n"
        "            <status>available</status>\n"
        "            <createTime>2026-01-16T08:00:00.000Z</createTime>\n"
        "            <attachmentSet/>\n"
        "            <volumeType>io2</volumeType>\n"
        "            <iops>1000</iops>\n"
        "            <encrypted>false</encrypted>\n"
        "            <multiAttachEnabled>true</multiAttachEnabled>\n"
        "        </item>\n"
        "    </volumeSet>\n"
        "    <nextToken>eyJ2IjoiMiIsImMiOiJBQUFBIiwicyI6MX0=</nextToken>\n"
        "</DescribeVolumesResponse>\n";

/* Same data in another element order, compact, nextToken first; last page (empty token). */
static const char volumes_reordered[] =
        "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><nextToken/>"
        "<volumeSet><item><tagSet><item><value>prod-cluster</value><key>lifeboat:group</key></item></tagSet>"
        "<multiAttachEnabled>false</multiAttachEnabled><encrypted>true</encrypted>"
        "<attachmentSet><item><deleteOnTermination>true</deleteOnTermination><status>attaching</status>"
        "<device>/dev/xvdaa</device><instanceId>i-0abcdef1234567890</instanceId>"
        "<volumeId>vol-0123456789abcdef0</volumeId></item></attachmentSet>"
        "<status>in-use</status><availabilityZone>us-east-1a</availabilityZone><size>80</size>"
        "<unknownFutureField><nested>x</nested></unknownFutureField>"
        "<volumeId>vol-0123456789abcdef0</volumeId><volumeType>gp3</volumeType></item></volumeSet>"
        "<requestId>r-2</requestId></DescribeVolumesResponse>";

static void test_volumes_sample(void **state) {
        _cleanup_volume_list_ struct lb_volume_list l = {};
        _cleanup_free_ char *token = NULL;
        assert_int_equal(lb_ec2_parse_volumes(volumes_page1, strlen(volumes_page1), &l, &token), 0);
        assert_string_equal(token, "eyJ2IjoiMiIsImMiOiJBQUFBIiwicyI6MX0=");
        assert_int_equal(l.n, 2);

        const struct lb_volume *v = &l.items[0];
        assert_string_equal(v->id, "vol-0123456789abcdef0");
        assert_int_equal(v->size_gib, 80);
        assert_string_equal(v->snapshot_id, "");
        assert_string_equal(v->availability_zone, "us-east-1a");
        assert_string_equal(v->state, "in-use");
        assert_string_equal(v->create_time, "2026-01-15T10:21:14.000Z");
        assert_string_equal(v->type, "gp3");
        assert_true(v->encrypted);
        assert_false(v->multi_attach);

        assert_int_equal(v->n_attachments, 1);
        const struct lb_attachment *a = &v->attachments[0];
        assert_string_equal(a->volume_id, "vol-0123456789abcdef0");
        assert_string_equal(a->instance_id, "i-0abcdef1234567890");
        assert_string_equal(a->device, "/dev/sdf");
        assert_string_equal(a->state, "attached");
        assert_string_equal(a->attach_time, "2026-01-15T10:22:01.000Z");
        assert_false(a->delete_on_termination);
        assert_ptr_equal(lb_volume_attachment_for(v, "i-0abcdef1234567890"), a);
        assert_null(lb_volume_attachment_for(v, "i-0000000000000000f"));

        assert_int_equal(v->n_tags, 3);
        assert_string_equal(lb_volume_tag(v, "lifeboat:group"), "prod-cluster");
        assert_string_equal(lb_volume_tag(v, "Name"), "");           /* empty <value/> */
        assert_string_equal(lb_volume_tag(v, "lifeboat:state"), ""); /* no <value> at all */
        assert_null(lb_volume_tag(v, "lifeboat:Group"));              /* keys are case-sensitive */

        v = &l.items[1];
        assert_string_equal(v->id, "vol-049df61146c4d7901");
        assert_int_equal(v->size_gib, 100);
        assert_string_equal(v->snapshot_id, "snap-1234567890abcdef0");
        assert_string_equal(v->state, "available");
        assert_string_equal(v->type, "io2");
        assert_false(v->encrypted);
        assert_true(v->multi_attach);
        assert_int_equal(v->n_attachments, 0);
        assert_null(v->attachments);
        assert_int_equal(v->n_tags, 0); /* no tagSet */
        assert_null(lb_volume_tag(v, "lifeboat:group"));

        assert_ptr_equal(lb_volume_list_find(&l, "vol-049df61146c4d7901"), &l.items[1]);
        assert_null(lb_volume_list_find(&l, "vol-049df61146c4d790"));
}

static void test_volumes_reordered(void **state) {
        _cleanup_volume_list_ struct lb_volume_list l = {};
        char *token = (char *) "sentinel";
        assert_int_equal(lb_ec2_parse_volumes(volumes_reordered, strlen(volumes_reordered), &l, &token), 0);
        assert_null(token); /* an empty nextToken means the last page */
        assert_int_equal(l.n, 1);
        const struct lb_volume *v = &l.items[0];
        assert_string_equal(v->id, "vol-0123456789abcdef0");
        assert_int_equal(v->size_gib, 80);
        assert_string_equal(v->state, "in-use");
        assert_string_equal(v->type, "gp3");
        assert_true(v->encrypted);
        assert_int_equal(v->n_attachments, 1);
        assert_string_equal(v->attachments[0].device, "/dev/xvdaa");
        assert_string_equal(v->attachments[0].state, "attaching");
        assert_string_equal(v->attachments[0].attach_time, "");
        assert_true(v->attachments[0].delete_on_termination);
        assert_string_equal(lb_volume_tag(v, "lifeboat:group"), "prod-cluster");
}

static void test_volumes_minimal_and_empty(void **state) {
        static const char minimal[] = "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                                      "<volumeSet><item><volumeId>vol-0aaaaaaaaaaaaaaaa</volumeId>"
                                      "<tagSet/></item></volumeSet></DescribeVolumesResponse>";
        _cleanup_volume_list_ struct lb_volume_list l = {};
        _cleanup_free_ char *token = NULL;
        assert_int_equal(lb_ec2_parse_volumes(minimal, strlen(minimal), &l, &token), 0);
        assert_null(token); /* no nextToken element */
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, "vol-0aaaaaaaaaaaaaaaa");
        assert_int_equal(l.items[0].size_gib, 0);
        assert_string_equal(l.items[0].state, "");
        assert_int_equal(l.items[0].n_tags, 0);
        assert_int_equal(l.items[0].n_attachments, 0);
        assert_false(l.items[0].encrypted);

        static const char empty[] = "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                                    "<requestId>r</requestId><volumeSet/></DescribeVolumesResponse>";
        _cleanup_volume_list_ struct lb_volume_list e = {};
        assert_int_equal(lb_ec2_parse_volumes(empty, strlen(empty), &e, NULL), 0);
        assert_int_equal(e.n, 0);
        assert_null(e.items);

        /* A page with no volumes that still points at a next page. */
        static const char empty_more[] = "<DescribeVolumesResponse><volumeSet/><nextToken>abc</nextToken>"
                                         "</DescribeVolumesResponse>";
        _cleanup_volume_list_ struct lb_volume_list m = {};
        _cleanup_free_ char *t2 = NULL;
        assert_int_equal(lb_ec2_parse_volumes(empty_more, strlen(empty_more), &m, &t2), 0);
        assert_int_equal(m.n, 0);
        assert_string_equal(t2, "abc");
}

static void expect_volumes_bad(const char *doc) {
        struct lb_volume_list l = { .n = 12345 };
        char *token = (char *) "untouched";
        assert_int_equal(lb_ec2_parse_volumes(doc, strlen(doc), &l, &token), -EBADMSG);
        assert_int_equal(l.n, 12345);
        assert_null(l.items);
        assert_string_equal(token, "untouched");
}

#define VOLS_HEAD "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><volumeSet>"
#define VOLS_TAIL "</volumeSet></DescribeVolumesResponse>"

static void test_volumes_rejected(void **state) {
        /* Ids that do not fit are refused, never cut. */
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-0123456789abcdef0123456789abcdef</volumeId></item>" VOLS_TAIL);
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><attachmentSet><item>"
                           "<instanceId>i-0123456789abcdef0123456789abcdef0</instanceId></item></attachmentSet>"
                           "</item>" VOLS_TAIL);
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><attachmentSet><item><device>"
                           "/dev/xvdaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "</device></item></attachmentSet></item>" VOLS_TAIL);
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><status>in-use-but-much-longer</status></item>"
                           VOLS_TAIL);
        /* volumeId is required. */
        expect_volumes_bad(VOLS_HEAD "<item><size>8</size></item>" VOLS_TAIL);
        expect_volumes_bad(VOLS_HEAD "<item><volumeId></volumeId></item>" VOLS_TAIL);
        /* Numbers and booleans must be what they claim. */
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><size>eight</size></item>" VOLS_TAIL);
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><size>-8</size></item>" VOLS_TAIL);
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><encrypted>maybe</encrypted></item>" VOLS_TAIL);
        /* A tag without a key. */
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><tagSet><item><value>x</value></item>"
                           "</tagSet></item>" VOLS_TAIL);
        /* An attachment of another volume inside this one. */
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId><attachmentSet><item>"
                           "<volumeId>vol-2</volumeId></item></attachmentSet></item>" VOLS_TAIL);
        /* Not a DescribeVolumes answer at all. */
        expect_volumes_bad("<Response><Errors><Error><Code>AuthFailure</Code></Error></Errors></Response>");
        expect_volumes_bad("<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>");
        /* Malformed. */
        expect_volumes_bad("");
        expect_volumes_bad("<DescribeVolumesResponse><volumeSet><item>");
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-1</volumeId></itm>" VOLS_TAIL);
}

static void test_volumes_truncated(void **state) {
        /* Every cut of a real answer is refused: a short read never yields a partial list. */
        size_t n = strlen(volumes_page1);
        for (size_t len = 0; len < n; len++) {
                /* Cutting only the final newline leaves a complete document. */
                if (len == n - 1)
                        continue;
                struct lb_volume_list l = {};
                char *token = NULL;
                assert_int_equal(lb_ec2_parse_volumes(volumes_page1, len, &l, &token), -EBADMSG);
                assert_null(l.items);
                assert_null(token);
        }
}

static void test_volume_id_at_field_limit(void **state) {
        /* 31 characters fit the 32-byte field; 32 do not. */
        static const char ok[] = VOLS_HEAD "<item><volumeId>vol-0123456789abcdef0123456789a</volumeId></item>" VOLS_TAIL;
        _cleanup_volume_list_ struct lb_volume_list l = {};
        assert_int_equal(lb_ec2_parse_volumes(ok, strlen(ok), &l, NULL), 0);
        assert_int_equal(strlen(l.items[0].id), 31);
        expect_volumes_bad(VOLS_HEAD "<item><volumeId>vol-0123456789abcdef0123456789ab</volumeId></item>" VOLS_TAIL);
}

static void test_volume_list_concat(void **state) {
        _cleanup_volume_list_ struct lb_volume_list a = {}, b = {};
        _cleanup_free_ char *t = NULL;
        assert_int_equal(lb_ec2_parse_volumes(volumes_page1, strlen(volumes_page1), &a, &t), 0);
        assert_int_equal(lb_ec2_parse_volumes(volumes_reordered, strlen(volumes_reordered), &b, NULL), 0);
        assert_int_equal(lb_volume_list_concat(&a, &b), 0);
        assert_int_equal(a.n, 3);
        assert_int_equal(b.n, 0);
        assert_null(b.items);
        assert_string_equal(a.items[2].attachments[0].device, "/dev/xvdaa");
        assert_string_equal(lb_volume_tag(&a.items[0], "lifeboat:group"), "prod-cluster");

        /* Into an empty list, and from an empty one. */
        _cleanup_volume_list_ struct lb_volume_list c = {};
        assert_int_equal(lb_volume_list_concat(&c, &a), 0);
        assert_int_equal(c.n, 3);
        assert_int_equal(lb_volume_list_concat(&c, &a), 0);
        assert_int_equal(c.n, 3);
}

/* ---- errors ---- */

static void test_error_bodies(void **state) {
        static const struct {
                const char *code;
                long status;
                enum lb_aws_error_kind kind;
                int error;
        } cases[] = {
                { "RequestLimitExceeded", 503, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "Throttling", 400, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "ThrottlingException", 400, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "RequestThrottled", 400, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "RequestThrottledException", 400, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "EC2ThrottledException", 400, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "TooManyRequestsException", 429, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "PriorRequestNotComplete", 400, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "SlowDown", 503, LB_AWS_ERR_THROTTLED, -EAGAIN },
                { "AuthFailure", 401, LB_AWS_ERR_AUTH, -EACCES },
                { "UnauthorizedOperation", 403, LB_AWS_ERR_AUTH, -EACCES },
                { "RequestExpired", 400, LB_AWS_ERR_AUTH, -EACCES },
                { "ExpiredToken", 400, LB_AWS_ERR_AUTH, -EACCES },
                { "InvalidClientTokenId", 401, LB_AWS_ERR_AUTH, -EACCES },
                { "SignatureDoesNotMatch", 403, LB_AWS_ERR_AUTH, -EACCES },
                { "OptInRequired", 401, LB_AWS_ERR_AUTH, -EACCES },
                { "VolumeInUse", 400, LB_AWS_ERR_VOLUME_IN_USE, -EBUSY },
                { "IncorrectState", 400, LB_AWS_ERR_INCORRECT_STATE, -EALREADY },
                { "IncorrectInstanceState", 400, LB_AWS_ERR_OTHER, -EIO },
                { "InvalidParameterValue", 400, LB_AWS_ERR_INVALID_PARAMETER, -EINVAL },
                { "InvalidParameter", 400, LB_AWS_ERR_INVALID_PARAMETER, -EINVAL },
                { "InvalidParameterCombination", 400, LB_AWS_ERR_INVALID_PARAMETER, -EINVAL },
                { "MissingParameter", 400, LB_AWS_ERR_INVALID_PARAMETER, -EINVAL },
                { "AttachmentLimitExceeded", 400, LB_AWS_ERR_ATTACHMENT_LIMIT, -ENOSPC },
                { "InvalidVolume.NotFound", 400, LB_AWS_ERR_VOLUME_NOT_FOUND, -ENOENT },
                { "InvalidVolume.ZoneMismatch", 400, LB_AWS_ERR_ZONE_MISMATCH, -EXDEV },
                { "InternalError", 500, LB_AWS_ERR_SERVER, -EREMOTEIO },
                { "InternalFailure", 500, LB_AWS_ERR_SERVER, -EREMOTEIO },
                { "ServiceUnavailable", 503, LB_AWS_ERR_SERVER, -EREMOTEIO },
                { "Unavailable", 503, LB_AWS_ERR_SERVER, -EREMOTEIO },
                { "Server.Unavailable", 503, LB_AWS_ERR_SERVER, -EREMOTEIO },
                { "Server.InternalError", 500, LB_AWS_ERR_SERVER, -EREMOTEIO },
                { "SomethingNew", 503, LB_AWS_ERR_SERVER, -EREMOTEIO },
                { "InvalidInstanceID.NotFound", 400, LB_AWS_ERR_OTHER, -EIO },
                { "SomethingNew", 400, LB_AWS_ERR_OTHER, -EIO },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char body[512];
                assert_int_equal(lb_snprintf(body, sizeof body,
                                             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                             "<Response><Errors><Error><Code>%s</Code><Message>text %zu</Message>"
                                             "</Error></Errors><RequestID>ea966190-f9aa-478e-9ede-%012zu</RequestID>"
                                             "</Response>",
                                             cases[i].code, i, i),
                                 0);
                struct lb_aws_error e;
                memset(&e, 0x55, sizeof e);
                assert_int_equal(lb_aws_parse_error(body, strlen(body), &e), 0);
                assert_string_equal(e.code, cases[i].code);
                char msg[32], rid[64];
                assert_int_equal(lb_snprintf(msg, sizeof msg, "text %zu", i), 0);
                assert_int_equal(lb_snprintf(rid, sizeof rid, "ea966190-f9aa-478e-9ede-%012zu", i), 0);
                assert_string_equal(e.message, msg);
                assert_string_equal(e.request_id, rid);

                enum lb_aws_error_kind kind = lb_aws_error_kind_from_code(e.code, cases[i].status);
                assert_int_equal(kind, cases[i].kind);
                assert_int_equal(lb_aws_error_kind_to_errno(kind), cases[i].error);
        }
}

static void test_error_body_variants(void **state) {
        /* The generic query-protocol shape, requestId in another case, namespace on the root. */
        static const char generic[] =
                "<ErrorResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><Error><Type>Sender</Type>"
                "<Code>ExpiredToken</Code><Message>The security token included in the request is expired"
                "</Message></Error><RequestId>abc-123</RequestId></ErrorResponse>";
        struct lb_aws_error e = {};
        assert_int_equal(lb_aws_parse_error(generic, strlen(generic), &e), 0);
        assert_string_equal(e.code, "ExpiredToken");
        assert_string_equal(e.request_id, "abc-123");
        assert_int_equal(e.kind, LB_AWS_ERR_AUTH);

        static const char lower[] = "<Response><Errors><Error><Message>m</Message><Code>VolumeInUse</Code></Error>"
                                    "</Errors><requestId>lower-1</requestId></Response>";
        assert_int_equal(lb_aws_parse_error(lower, strlen(lower), &e), 0);
        assert_string_equal(e.code, "VolumeInUse");
        assert_string_equal(e.request_id, "lower-1");
        assert_int_equal(e.kind, LB_AWS_ERR_VOLUME_IN_USE);

        /* No message, no request id. */
        static const char bare[] = "<Response><Errors><Error><Code>IncorrectState</Code></Error></Errors></Response>";
        assert_int_equal(lb_aws_parse_error(bare, strlen(bare), &e), 0);
        assert_string_equal(e.message, "");
        assert_string_equal(e.request_id, "");

        /* A very long message is cut for humans, on a UTF-8 boundary. */
        _cleanup_buf_ struct lb_buf b = {};
        assert_int_equal(lb_buf_append_str(&b, "<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>"), 0);
        for (int i = 0; i < 400; i++)
                assert_int_equal(lb_buf_append_str(&b, "é"), 0);
        assert_int_equal(lb_buf_append_str(&b, "</Message></Error></Errors></Response>"), 0);
        assert_int_equal(lb_aws_parse_error(b.data, b.len, &e), 0);
        assert_true(strlen(e.message) <= sizeof e.message - 1);
        assert_true(strlen(e.message) % 2 == 0); /* whole two-byte characters only */
        assert_true(strlen(e.message) >= sizeof e.message - 3);
}

static void test_error_body_rejected(void **state) {
        static const char *const bad[] = {
                "",
                "<html><body>502 Bad Gateway</body></html>",
                "<Response><Errors><Error><Message>no code</Message></Error></Errors></Response>",
                "<Response><Errors><Error><Code></Code></Error></Errors></Response>",
                "<Response><Errors></Errors></Response>",
                "<Response><Errors><Error><Code>Throttling",
                "<DescribeVolumesResponse><volumeSet/></DescribeVolumesResponse>",
                "<Response><Errors><Error><Code>ThisCodeIsFarTooLongToBeAnyRealAwsErrorCodeAtAllReallyNotEvenClose"
                "</Code></Error></Errors></Response>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_aws_error e = { .kind = LB_AWS_ERR_OTHER, .code = "keep" };
                assert_int_equal(lb_aws_parse_error(bad[i], strlen(bad[i]), &e), -EBADMSG);
                assert_string_equal(e.code, "keep");
        }
}

static void test_kind_from_status(void **state) {
        assert_int_equal(lb_aws_error_kind_from_code(NULL, 500), LB_AWS_ERR_SERVER);
        assert_int_equal(lb_aws_error_kind_from_code("", 503), LB_AWS_ERR_SERVER);
        assert_int_equal(lb_aws_error_kind_from_code(NULL, 400), LB_AWS_ERR_OTHER);
        assert_int_equal(lb_aws_error_kind_from_code(NULL, 0), LB_AWS_ERR_OTHER);
        /* The code wins over the status. */
        assert_int_equal(lb_aws_error_kind_from_code("RequestLimitExceeded", 503), LB_AWS_ERR_THROTTLED);
        assert_int_equal(lb_aws_error_kind_from_code("VolumeInUse", 500), LB_AWS_ERR_VOLUME_IN_USE);
        /* Codes are case-sensitive. */
        assert_int_equal(lb_aws_error_kind_from_code("volumeinuse", 400), LB_AWS_ERR_OTHER);
}

static void test_kind_to_errno(void **state) {
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_OK), 0);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_TRANSPORT), -EHOSTUNREACH);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_THROTTLED), -EAGAIN);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_SERVER), -EREMOTEIO);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_AUTH), -EACCES);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_VOLUME_IN_USE), -EBUSY);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_INCORRECT_STATE), -EALREADY);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_INVALID_PARAMETER), -EINVAL);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_ATTACHMENT_LIMIT), -ENOSPC);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_VOLUME_NOT_FOUND), -ENOENT);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_ZONE_MISMATCH), -EXDEV);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_BAD_ANSWER), -EBADMSG);
        assert_int_equal(lb_aws_error_kind_to_errno(LB_AWS_ERR_OTHER), -EIO);

        /* Every failure kind maps to a distinct errno, so callers can tell them apart. */
        for (int a = LB_AWS_ERR_TRANSPORT; a <= LB_AWS_ERR_OTHER; a++) {
                assert_true(lb_aws_error_kind_to_errno(a) < 0);
                assert_non_null(lb_aws_error_kind_to_string(a));
                for (int b = a + 1; b <= LB_AWS_ERR_OTHER; b++)
                        assert_int_not_equal(lb_aws_error_kind_to_errno(a), lb_aws_error_kind_to_errno(b));
        }
}

static void test_error_format(void **state) {
        struct lb_aws_error e = {
                .kind = LB_AWS_ERR_VOLUME_IN_USE,
                .http_status = 400,
                .code = "VolumeInUse",
                .message = "vol-0123456789abcdef0 is already attached to an instance",
                .request_id = "ea966190-f9aa-478e-9ede-example",
        };
        char buf[256];
        assert_int_equal(lb_aws_error_format(&e, buf, sizeof buf), 0);
        assert_string_equal(buf, "VolumeInUse: vol-0123456789abcdef0 is already attached to an instance "
                                 "(request id ea966190-f9aa-478e-9ede-example)");

        struct lb_aws_error t = { .kind = LB_AWS_ERR_TRANSPORT, .message = "Connection refused" };
        assert_int_equal(lb_aws_error_format(&t, buf, sizeof buf), 0);
        assert_string_equal(buf, "transport error: Connection refused");

        struct lb_aws_error s = { .kind = LB_AWS_ERR_SERVER, .http_status = 502 };
        assert_int_equal(lb_aws_error_format(&s, buf, sizeof buf), 0);
        assert_string_equal(buf, "server error (HTTP 502)");

        char small[8];
        assert_int_equal(lb_aws_error_format(&e, small, sizeof small), -ENAMETOOLONG);
}

/* ---- attach / detach / return / instances ---- */

static void test_attachment(void **state) {
        static const char attach[] =
                "<AttachVolumeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
                "  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>\n"
                "  <volumeId>vol-1234567890abcdef0</volumeId>\n"
                "  <instanceId>i-1234567890abcdef0</instanceId>\n"
                "  <device>/dev/sdh</device>\n"
                "  <status>attaching</status>\n"
                "  <attachTime>2026-01-15T10:22:01.000Z</attachTime>\n"
                "</AttachVolumeResponse>";
        struct lb_attachment a = {};
        assert_int_equal(lb_ec2_parse_attachment(attach, strlen(attach), &a), 0);
        assert_string_equal(a.volume_id, "vol-1234567890abcdef0");
        assert_string_equal(a.instance_id, "i-1234567890abcdef0");
        assert_string_equal(a.device, "/dev/sdh");
        assert_string_equal(a.state, "attaching");
        assert_string_equal(a.attach_time, "2026-01-15T10:22:01.000Z");
        assert_false(a.delete_on_termination);

        static const char detach[] = "<DetachVolumeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                                     "<status>detaching</status><attachTime>2026-01-15T10:22:01.000Z</attachTime>"
                                     "<device>/dev/sdh</device><instanceId>i-1234567890abcdef0</instanceId>"
                                     "<volumeId>vol-1234567890abcdef0</volumeId><requestId>r</requestId>"
                                     "</DetachVolumeResponse>";
        assert_int_equal(lb_ec2_parse_attachment(detach, strlen(detach), &a), 0);
        assert_string_equal(a.state, "detaching");

        static const char *const bad[] = {
                "<AttachVolumeResponse><device>/dev/sdh</device></AttachVolumeResponse>",
                "<AttachVolumeResponse><volumeId>vol-1234567890abcdef0123456789abcdef</volumeId></AttachVolumeResponse>",
                "<Response><Errors><Error><Code>VolumeInUse</Code></Error></Errors></Response>",
                "<CreateTagsResponse><return>true</return></CreateTagsResponse>",
                "<AttachVolumeResponse><volumeId>vol-1</volumeId>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_attachment keep = { .device = "keep" };
                assert_int_equal(lb_ec2_parse_attachment(bad[i], strlen(bad[i]), &keep), -EBADMSG);
                assert_string_equal(keep.device, "keep");
        }
}

static void test_return(void **state) {
        static const char ok[] = "<CreateTagsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
                                 "   <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>\n"
                                 "   <return>true</return>\n"
                                 "</CreateTagsResponse>";
        assert_int_equal(lb_ec2_parse_return(ok, strlen(ok)), 0);
        static const char mod[] = "<ModifyInstanceAttributeResponse><return>true</return><requestId>x</requestId>"
                                  "</ModifyInstanceAttributeResponse>";
        assert_int_equal(lb_ec2_parse_return(mod, strlen(mod)), 0);

        static const char *const bad[] = {
                "<DeleteVolumeResponse><return>false</return></DeleteVolumeResponse>",
                "<DeleteVolumeResponse><requestId>x</requestId></DeleteVolumeResponse>",
                "<DeleteVolumeResponse><return>TRUE </return></DeleteVolumeResponse>",
                "<Response><Errors><Error><Code>X</Code></Error></Errors><return>true</return></Response>",
                "<DeleteVolumeResponse><return>true</return>",
                "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(lb_ec2_parse_return(bad[i], strlen(bad[i])), -EBADMSG);
}

static const char instances[] =
        "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
        "  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>\n"
        "  <reservationSet>\n"
        "    <item>\n"
        "      <reservationId>r-1234567890abcdef0</reservationId>\n"
        "      <ownerId>123456789012</ownerId>\n"
        "      <groupSet/>\n"
        "      <instancesSet>\n"
        "        <item>\n"
        "          <instanceId>i-1234567890abcdef0</instanceId>\n"
        "          <imageId>ami-bff32ccc</imageId>\n"
        "          <instanceState><code>16</code><name>running</name></instanceState>\n"
        "          <instanceType>m5.large</instanceType>\n"
        "          <placement>\n"
        "            <availabilityZone>eu-west-1c</availabilityZone>\n"
        "            <groupName/>\n"
        "            <tenancy>default</tenancy>\n"
        "          </placement>\n"
        "          <rootDeviceType>ebs</rootDeviceType>\n"
        "          <rootDeviceName>/dev/xvda</rootDeviceName>\n"
        "          <blockDeviceMapping>\n"
        "            <item>\n"
        "              <deviceName>/dev/xvda</deviceName>\n"
        "              <ebs>\n"
        "                <volumeId>vol-1234567890abcdef0</volumeId>\n"
        "                <status>attached</status>\n"
        "                <attachTime>2026-01-15T10:00:00.000Z</attachTime>\n"
        "                <deleteOnTermination>true</deleteOnTermination>\n"
        "              </ebs>\n"
        "            </item>\n"
        "            <item>\n"
        "              <ebs>\n"
        "                <deleteOnTermination>false</deleteOnTermination>\n"
        "                <status>attaching</status>\n"
        "                <volumeId>vol-049df61146c4d7901</volumeId>\n"
        "              </ebs>\n"
        "              <deviceName>/dev/sdf</deviceName>\n"
        "            </item>\n"
        "          </blockDeviceMapping>\n"
        "          <tagSet><item><key>Name</key><value>worker</value></item></tagSet>\n"
        "        </item>\n"
        "      </instancesSet>\n"
        "    </item>\n"
        "  </reservationSet>\n"
        "</DescribeInstancesResponse>\n";

static void test_instance(void **state) {
        struct lb_instance inst = {};
        assert_int_equal(lb_ec2_parse_instance(instances, strlen(instances), &inst), 0);
        assert_string_equal(inst.id, "i-1234567890abcdef0");
        assert_string_equal(inst.availability_zone, "eu-west-1c");
        assert_string_equal(inst.root_device, "/dev/xvda");
        assert_int_equal(inst.n_devices, 2);
        assert_string_equal(inst.devices[0].device, "/dev/xvda");
        assert_string_equal(inst.devices[0].volume_id, "vol-1234567890abcdef0");
        assert_string_equal(inst.devices[0].state, "attached");
        assert_true(inst.devices[0].delete_on_termination);
        assert_string_equal(inst.devices[1].device, "/dev/sdf");
        assert_string_equal(inst.devices[1].volume_id, "vol-049df61146c4d7901");
        assert_string_equal(inst.devices[1].state, "attaching");
        assert_false(inst.devices[1].delete_on_termination);
        lb_instance_done(&inst);
        assert_null(inst.devices);
        assert_int_equal(inst.n_devices, 0);
        lb_instance_done(&inst); /* twice is harmless */
}

static void test_instance_edge_cases(void **state) {
        static const char none[] = "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>";
        struct lb_instance inst = { .id = "keep" };
        assert_int_equal(lb_ec2_parse_instance(none, strlen(none), &inst), -ENOENT);
        assert_string_equal(inst.id, "keep");

        static const char no_devices[] = "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
                                         "<instanceId>i-1234567890abcdef0</instanceId><blockDeviceMapping/>"
                                         "</item></instancesSet></item></reservationSet></DescribeInstancesResponse>";
        struct lb_instance i2 = {};
        assert_int_equal(lb_ec2_parse_instance(no_devices, strlen(no_devices), &i2), 0);
        assert_int_equal(i2.n_devices, 0);
        assert_string_equal(i2.availability_zone, "");
        lb_instance_done(&i2);

        static const char *const bad[] = {
                "<DescribeInstancesResponse><reservationSet><item><instancesSet><item><imageId>ami-1</imageId>"
                "</item></instancesSet></item></reservationSet></DescribeInstancesResponse>",
                "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
                "<instanceId>i-1234567890abcdef0</instanceId><blockDeviceMapping><item>"
                "<deviceName>/dev/sdf</deviceName><ebs><volumeId>vol-0123456789abcdef0123456789abcdef</volumeId>"
                "</ebs></item></blockDeviceMapping></item></instancesSet></item></reservationSet>"
                "</DescribeInstancesResponse>",
                "<DescribeVolumesResponse><volumeSet/></DescribeVolumesResponse>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_instance keep = { .id = "keep" };
                assert_int_equal(lb_ec2_parse_instance(bad[i], strlen(bad[i]), &keep), -EBADMSG);
                assert_string_equal(keep.id, "keep");
                assert_null(keep.devices);
        }

        size_t n = strlen(instances);
        for (size_t len = 0; len + 1 < n; len++) {
                struct lb_instance keep = {};
                assert_int_equal(lb_ec2_parse_instance(instances, len, &keep), -EBADMSG);
                assert_null(keep.devices);
        }
}

/* The DescribeSnapshots sample of the EC2 API reference, with a second, pending snapshot. */
static const char snapshots_doc[] =
        "<DescribeSnapshotsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
        "    <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>\n"
        "    <snapshotSet>\n"
        "        <item>\n"
        "            <snapshotId>snap-1234567890abcdef0</snapshotId>\n"
        "            <volumeId>vol-1234567890abcdef0</volumeId>\n"
        "            <status>completed</status>\n"
        "            <startTime>2024-05-01T12:00:00.000Z</startTime>\n"
        "            <progress>100%</progress>\n"
        "            <ownerId>111122223333</ownerId>\n"
        "            <volumeSize>8</volumeSize>\n"
        "            <description>lifeboat backup</description>\n"
        "            <encrypted>true</encrypted>\n"
        "            <storageTier>standard</storageTier>\n"
        "            <tagSet><item><key>lifeboat:group</key><value>ads</value></item>"
        "<item><key>lifeboat:relocated-from</key><value>vol-1234567890abcdef0</value></item></tagSet>\n"
        "        </item>\n"
        "        <item>\n"
        "            <status>pending</status>\n"
        "            <snapshotId>snap-0fedcba9876543210</snapshotId>\n"
        "            <progress/>\n"
        "        </item>\n"
        "    </snapshotSet>\n"
        "    <nextToken>tok2</nextToken>\n"
        "</DescribeSnapshotsResponse>\n";

static void test_snapshots(void **state) {
        _cleanup_snapshot_list_ struct lb_snapshot_list l = {};
        _cleanup_free_ char *token = NULL;
        assert_int_equal(lb_ec2_parse_snapshots(snapshots_doc, strlen(snapshots_doc), &l, &token), 0);
        assert_string_equal(token, "tok2");
        assert_int_equal(l.n, 2);
        const struct lb_snapshot *x = &l.items[0];
        assert_string_equal(x->id, "snap-1234567890abcdef0");
        assert_string_equal(x->volume_id, "vol-1234567890abcdef0");
        assert_string_equal(x->state, "completed");
        assert_string_equal(x->start_time, "2024-05-01T12:00:00.000Z");
        assert_string_equal(x->progress, "100%");
        assert_int_equal(x->volume_size_gib, 8);
        assert_true(x->encrypted);
        assert_int_equal(x->n_tags, 2);
        assert_string_equal(lb_snapshot_tag(x, "lifeboat:relocated-from"), "vol-1234567890abcdef0");
        assert_null(lb_snapshot_tag(x, "Name"));
        x = &l.items[1];
        assert_string_equal(x->state, "pending");
        assert_string_equal(x->progress, "");   /* a fresh snapshot's progress may be empty */
        assert_int_equal(x->n_tags, 0);

        /* Pages join. */
        _cleanup_snapshot_list_ struct lb_snapshot_list all = {};
        assert_int_equal(lb_snapshot_list_concat(&all, &l), 0);
        assert_int_equal(all.n, 2);
        assert_int_equal(l.n, 0);

        /* Rejected: no id, no status, an error document, another answer, a cut id. */
        static const char *const bad[] = {
                "<DescribeSnapshotsResponse><snapshotSet><item><status>pending</status></item></snapshotSet>"
                "</DescribeSnapshotsResponse>",
                "<DescribeSnapshotsResponse><snapshotSet><item><snapshotId>snap-1</snapshotId></item></snapshotSet>"
                "</DescribeSnapshotsResponse>",
                "<DescribeSnapshotsResponse><snapshotSet><item><snapshotId>snap-0123456789abcdef0123456789abcdef"
                "</snapshotId><status>pending</status></item></snapshotSet></DescribeSnapshotsResponse>",
                "<DescribeSnapshotsResponse><snapshotSet><item><snapshotId>snap-1</snapshotId><status>pending"
                "</status><volumeSize>many</volumeSize></item></snapshotSet></DescribeSnapshotsResponse>",
                "<Response><Errors><Error><Code>InvalidSnapshot.NotFound</Code></Error></Errors></Response>",
                "<DescribeVolumesResponse><volumeSet/></DescribeVolumesResponse>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_snapshot_list b = { .n = 5 };
                assert_int_equal(lb_ec2_parse_snapshots(bad[i], strlen(bad[i]), &b, NULL), -EBADMSG);
                assert_int_equal(b.n, 5);
        }
}

static void test_created_snapshot_and_volume(void **state) {
        /* CreateSnapshot answers the Snapshot directly under the root, progress empty. */
        static const char snap[] =
                "<CreateSnapshotResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                "<requestId>r</requestId><snapshotId>snap-1234567890abcdef0</snapshotId>"
                "<volumeId>vol-1234567890abcdef0</volumeId><status>pending</status>"
                "<startTime>2024-05-01T12:00:00.000Z</startTime><progress></progress><ownerId>111122223333</ownerId>"
                "<volumeSize>8</volumeSize><description>lifeboat</description><encrypted>false</encrypted>"
                "<tagSet><item><key>lifeboat:group</key><value>ads</value></item></tagSet>"
                "</CreateSnapshotResponse>";
        struct lb_snapshot x = {};
        assert_int_equal(lb_ec2_parse_created_snapshot(snap, strlen(snap), &x), 0);
        assert_string_equal(x.id, "snap-1234567890abcdef0");
        assert_string_equal(x.state, "pending");
        assert_string_equal(lb_snapshot_tag(&x, "lifeboat:group"), "ads");
        lb_snapshot_done(&x);
        assert_int_equal(lb_ec2_parse_created_snapshot(snapshots_doc, strlen(snapshots_doc), &x), -EBADMSG);

        /* CreateVolume: the tagged-volume sample of the API reference, plus gp3's throughput. */
        static const char vol[] =
                "<CreateVolumeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                "<requestId>bb216d10-54b9-4bc2-958d-fcfe2EXAMPLE</requestId>"
                "<volumeId>vol-043c91f2fa4abcdef</volumeId><size>80</size><snapshotId>snap-1234567890abcdef0</snapshotId>"
                "<availabilityZone>us-east-1a</availabilityZone><status>creating</status>"
                "<createTime>2020-11-30T10:47:43.000Z</createTime><volumeType>gp3</volumeType><iops>4000</iops>"
                "<encrypted>true</encrypted><kmsKeyId>arn:aws:kms:us-east-1:123456789012:key/x</kmsKeyId>"
                "<tagSet><item><key>lifeboat:state</key><value>dirty</value></item></tagSet>"
                "<multiAttachEnabled>false</multiAttachEnabled><throughput>250</throughput>"
                "</CreateVolumeResponse>";
        struct lb_volume v = {};
        assert_int_equal(lb_ec2_parse_created_volume(vol, strlen(vol), &v), 0);
        assert_string_equal(v.id, "vol-043c91f2fa4abcdef");
        assert_string_equal(v.state, "creating");
        assert_string_equal(v.snapshot_id, "snap-1234567890abcdef0");
        assert_string_equal(v.availability_zone, "us-east-1a");
        assert_int_equal(v.size_gib, 80);
        assert_int_equal(v.iops, 4000);
        assert_int_equal(v.throughput, 250);
        assert_string_equal(lb_volume_tag(&v, "lifeboat:state"), "dirty");
        lb_volume_done(&v);
        static const char no_id[] = "<CreateVolumeResponse><status>creating</status></CreateVolumeResponse>";
        assert_int_equal(lb_ec2_parse_created_volume(no_id, strlen(no_id), &v), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_volumes_sample),
                cmocka_unit_test(test_volumes_reordered),
                cmocka_unit_test(test_volumes_minimal_and_empty),
                cmocka_unit_test(test_volumes_rejected),
                cmocka_unit_test(test_volumes_truncated),
                cmocka_unit_test(test_volume_id_at_field_limit),
                cmocka_unit_test(test_volume_list_concat),
                cmocka_unit_test(test_error_bodies),
                cmocka_unit_test(test_error_body_variants),
                cmocka_unit_test(test_error_body_rejected),
                cmocka_unit_test(test_kind_from_status),
                cmocka_unit_test(test_kind_to_errno),
                cmocka_unit_test(test_error_format),
                cmocka_unit_test(test_attachment),
                cmocka_unit_test(test_return),
                cmocka_unit_test(test_instance),
                cmocka_unit_test(test_instance_edge_cases),
                cmocka_unit_test(test_snapshots),
                cmocka_unit_test(test_created_snapshot_and_volume),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
