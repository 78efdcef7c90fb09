/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"

struct lb_creds_provider {
        struct lb_context *ctx;
        struct lb_imds *imds;
        struct lb_credentials creds;
};

int lb_creds_provider_new(struct lb_context *ctx, struct lb_imds *imds, struct lb_creds_provider **ret) {
        _cleanup_(lb_creds_provider_freep) struct lb_creds_provider *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->ctx = ctx;
        p->imds = imds;
        int r = lb_credentials_load(ctx, imds, &p->creds);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

void lb_creds_provider_free(struct lb_creds_provider *p) {
        if (!p)
                return;
        lb_credentials_done(&p->creds);
        free(p);
}

int lb_creds_provider_reload(struct lb_creds_provider *p) {
        struct lb_credentials fresh = {};
        int r = lb_credentials_load(p->ctx, p->imds, &fresh);
        if (r < 0)
                return r;
        lb_credentials_done(&p->creds);
        p->creds = fresh;
        explicit_bzero(&fresh, sizeof fresh);
        return 0;
}

const struct lb_credentials *lb_creds_provider_get(struct lb_creds_provider *p) {
        if (p->creds.from_imds && lb_credentials_need_refresh(&p->creds, time(NULL))) {
                int r = lb_creds_provider_reload(p);
                if (r < 0)
                        /* The old ones may still be valid for a while; an AUTH answer will tell. */
                        lb_warn(p->ctx, "Could not refresh the instance role credentials: %s", strerror(-r));
                else
                        lb_debug(p->ctx, "Refreshed the instance role credentials");
        }
        return &p->creds;
}

bool lb_creds_provider_refreshable(const struct lb_creds_provider *p) {
        return p->creds.from_imds;
}

const char *lb_creds_provider_source(const struct lb_creds_provider *p) {
        return p->creds.from_imds ? "the instance role" : "the environment";
}
