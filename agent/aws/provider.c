/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"

struct lb_creds_provider {
        struct lb_context *ctx;
        lb_creds_loader load;
        struct lb_creds_chain chain;
        struct lb_credentials creds;
        time_t next_attempt;    /* no refresh before this, while the credentials have not expired */
};

/* Between the refresh margin and the expiry the source may keep handing out the same
 * credentials (IMDS rotates them only 5 minutes ahead) or fail: one attempt a minute, not one
 * per request. */
#define REFRESH_RETRY_S 60

int lb_creds_provider_new(struct lb_context *ctx, lb_creds_loader load, const struct lb_creds_chain *chain,
                          struct lb_creds_provider **ret) {
        if (!load)
                return -EINVAL;
        _cleanup_(lb_creds_provider_freep) struct lb_creds_provider *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->ctx = ctx;
        p->load = load;
        if (chain)
                p->chain = *chain;
        int r = p->load(ctx, &p->chain, &p->creds);
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
        int r = p->load(p->ctx, &p->chain, &fresh);
        if (r < 0)
                return r;
        lb_credentials_done(&p->creds);
        p->creds = fresh;
        explicit_bzero(&fresh, sizeof fresh);
        return 0;
}

const struct lb_credentials *lb_creds_provider_get(struct lb_creds_provider *p) {
        time_t now = time(NULL);
        bool expired = now >= p->creds.expiration;
        if (lb_credentials_refreshable(&p->creds) && lb_credentials_need_refresh(&p->creds, now) &&
            (expired || now >= p->next_attempt)) {
                int r = lb_creds_provider_reload(p);
                if (r < 0)
                        /* The old ones may still be valid for a while; an AUTH answer will tell. */
                        lb_warn(p->ctx, "Could not refresh the credentials from %s: %s", p->creds.origin, strerror(-r));
                else
                        lb_debug(p->ctx, "Refreshed the credentials from %s", p->creds.origin);
                p->next_attempt = now + REFRESH_RETRY_S;
        }
        return &p->creds;
}

bool lb_creds_provider_refreshable(const struct lb_creds_provider *p) {
        return lb_credentials_refreshable(&p->creds);
}

const char *lb_creds_provider_source(const struct lb_creds_provider *p) {
        return p->creds.origin[0] ? p->creds.origin : lb_creds_source_to_string(p->creds.source);
}

const struct lb_credentials *lb_creds_provider_peek(const struct lb_creds_provider *p) {
        return &p->creds;
}
