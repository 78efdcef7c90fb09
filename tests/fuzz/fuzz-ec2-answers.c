/* SPDX-License-Identifier: MIT */
/* aws/ec2-answers: every EC2 answer parser, each on the same input. */
#include "lifeboat/aws/ec2-answers.h"
#include "lifeboat/basic/utf8.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;

        struct lb_volume_list l = { 0 };
        char *token = NULL;
        if (lb_ec2_parse_volumes(buf, size, &l, &token) >= 0) {
                for (size_t i = 0; i < l.n; i++) {
                        const struct lb_volume *v = &l.items[i];
                        fuzz_check(lb_utf8_valid(v->id, strlen(v->id)));
                        for (size_t t = 0; t < v->n_tags; t++)
                                fuzz_check(v->tags[t].key && lb_volume_tag(v, v->tags[t].key));
                        struct lb_volume copy;
                        if (lb_volume_copy(v, &copy) >= 0)
                                lb_volume_done(&copy);
                }
                free(token);
        }
        lb_volume_list_done(&l);

        struct lb_attachment a;
        (void) lb_ec2_parse_attachment(buf, size, &a);
        (void) lb_ec2_parse_return(buf, size);

        struct lb_instance inst = { 0 };
        if (lb_ec2_parse_instance(buf, size, &inst) >= 0)
                lb_instance_done(&inst);

        /* Relocation's answers: snapshots found, a snapshot or a volume created. */
        struct lb_snapshot_list snaps = { 0 };
        token = NULL;
        if (lb_ec2_parse_snapshots(buf, size, &snaps, &token) >= 0) {
                for (size_t i = 0; i < snaps.n; i++)
                        fuzz_check(lb_utf8_valid(snaps.items[i].id, strlen(snaps.items[i].id)));
                free(token);
        }
        lb_snapshot_list_done(&snaps);
        struct lb_snapshot snap = { 0 };
        if (lb_ec2_parse_created_snapshot(buf, size, &snap) >= 0)
                lb_snapshot_done(&snap);
        struct lb_volume created = { 0 };
        if (lb_ec2_parse_created_volume(buf, size, &created) >= 0)
                lb_volume_done(&created);
        return 0;
}
