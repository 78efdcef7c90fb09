/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "lifeboat/aws/ec2-answers.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/state/watch-state.h"

struct lb_context;
struct lb_credentials;
struct lb_settings;

/*
 * lifeboat status: this instance (from IMDS), its group's volumes in this AZ, and its own side
 * of the story from the run directory: watch.json and recovered.json. Gathered once, then
 * shown as a table or as one JSON document (the schema is in the README); agent/cli prints it.
 */
struct lb_status {
        struct lb_aws aws;                      /* identity, with the AZ id and lifecycle */
        struct lb_volume_list volumes;          /* the group's volumes in this AZ */
        struct lb_watch_state watch;
        bool have_watch;                        /* watch.json was read */
        bool watch_running;                     /* ... and the watch that wrote it is alive */
        struct lb_manifest manifest;
};

/* Opens AWS, describes the group's volumes and reads the run directory. A negative errno when
 * AWS is not usable (logged); unreadable run-directory files are warned about and left out. */
int lb_status_gather(struct lb_context *ctx, struct lb_status *ret);
void lb_status_done(struct lb_status *st);
static inline void lb_status_donep(struct lb_status *st) {
        lb_status_done(st);
}
#define _cleanup_status_ _cleanup_(lb_status_donep)

/* The whole status as one JSON object. */
int lb_status_to_json(const struct lb_settings *s, const struct lb_status *st, json_t **ret);
/* The whole status as the table "lifeboat status" prints. */
int lb_status_format(const struct lb_settings *s, const struct lb_status *st, char **ret_text);

/* Where the credentials came from: one line for the table ("Creds     <origin>, temporary until
 * T") and the JSON object {"source" (lb_creds_source_to_string()), "origin", "expiration" (ISO
 * 8601 or null)}. Never a key or a secret. */
int lb_status_credentials_text(const struct lb_credentials *c, char **ret_text);
int lb_status_credentials_json(const struct lb_credentials *c, json_t **ret);

/* The watch part alone: a few lines about the watch state (st NULL: watch never ran here) and
 * the recovered volumes of the manifest m (may be NULL); and the same as the JSON object
 * {"running", "state" (watch.json or null), "recovered" (the manifest's entries, each with the
 * state watch gives it)}. */
int lb_status_watch_text(const struct lb_watch_state *st, bool running, const struct lb_manifest *m,
                         char **ret_text);
int lb_status_watch_json(const struct lb_watch_state *st, bool running, const struct lb_manifest *m,
                         json_t **ret);
