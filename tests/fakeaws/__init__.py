# SPDX-License-Identifier: MIT
"""A fake AWS for lifeboat's integration tests, demo and benchmark.

One process serves, on 127.0.0.1 with ephemeral ports:

  * a fake IMDSv2 for any number of fake instances, selected by a path prefix
    (http://127.0.0.1:IMDS_PORT/<instance-id>/latest/...; /latest/... without a
    prefix is the first instance created);
  * a fake EC2 Query API (version 2016-11-15) that verifies SigV4 like AWS,
    answers in AWS's XML, and REALLY attaches volumes: every EBS volume is a
    sparse image file, and attaching it sets up a loop device, a fake sysfs
    entry and a real block device node in the attaching instance's own
    directories (STATE/hosts/<instance-id>/{sys,dev});
  * STS's AssumeRoleWithWebIdentity on the same port (unsigned, as AWS takes it; the
    tokens it trusts are registered through the control API), with STS's XML and errors;
  * a container credentials endpoint (the ECS agent's, or the EKS Pod Identity Agent's
    with an Authorization token) on a port of its own;
  * a control API under /_fake/ on the EC2 port (JSON, no signature) that
    tests use to create instances and volumes, inject events and faults, and
    read the request log.

Usage:
  /usr/bin/python3 tests/fakeaws --state-dir DIR [--region us-east-1] [--ready-file FILE]
                                 [--exit-with-parent]
  (or python3 -m fakeaws ... with tests/ on sys.path)

The ready file gets {"imds_port": .., "ec2_port": .., "container_port": .., "pid": ..}
once the ports listen. SIGTERM/SIGINT stop the fake; on the way out it detaches every
loop device it set up and removes its device nodes. Requests are logged to
DIR/fakeaws.log.

Standard library only; runs under /usr/bin/python3 (3.11). Needs root for
losetup and mknod.

The modules, from the bottom up:
  base       constants, AWS's time formats, ids, the log, AwsError / ControlError, Reply
  config     the settings tests change at run time (/_fake/config)
  faults     the faults tests inject (/_fake/faults)
  model      volumes, attachments, instances, role credentials
  devices    each instance's fake sysfs and /dev, and the loop devices behind attachments
  store      EC2's state machine: attach, detach, tags, termination, events, credentials
  sigv4      the SigV4 verifier
  xmlout     the XML writer
  query      the Query protocol: parameters, filters, pagination, the error answer, the
             service base class and the endpoint that dispatches by credential scope
             (an unsigned request by its Action)
  ec2        the EC2 actions and the XML shapes of their answers
  sts        STS AssumeRoleWithWebIdentity, the web identities it trusts, its call log
  container  the container credentials endpoint
  imds       IMDSv2
  control    the /_fake/ control API
  server     the HTTP servers, the request log and FakeAws, which puts it all together
  __main__   the command line

Control API (EC2 port, JSON bodies; errors are {"error": "..."} with 400/404/409/500):
  GET  /_fake/health                       {"ok": true}
  POST /_fake/instances                    {instance_id?, availability_zone? ("REGIONa"), az_id?,
                                            instance_type? ("m5.large"), lifecycle? ("spot"|"on-demand"),
                                            device_style? ("nvme"|"xen"), attachment_slots? (27, root
                                            included), tags?, buffer?: {device? ("/dev/sdf"), size_gib? (1),
                                            image?, delete_on_termination? (true), tags?, volume_type?}}
                                           -> instance JSON + buffer_volume_id when a buffer was asked for
  GET  /_fake/instances[/<id>]             instance JSON: instance_id, availability_zone, az_id,
                                            instance_type, lifecycle, device_style, attachment_slots,
                                            state, root_volume_id, tags, sysfs_root, dev_root,
                                            imds_endpoint, events
  POST /_fake/instances/<id>/terminate     -> {instance_id, deleted: [vol..], detached: [vol..]}
  POST /_fake/instances/<id>/events        {spot?: {action?, time?}|null, spot_after_s?,
                                            rebalance?: {noticeTime?}|null, lifecycle_state?: str|null}
                                           (only the keys given change) -> the events
  POST /_fake/volumes                      {availability_zone?, size_gib?, image?, tags?, multi_attach?,
                                            volume_type? ("gp3"), state? ("available"|"creating"|"error"),
                                            volume_id?, create_time? (ISO 8601 with zone, to back-date)}
                                           -> {volume_id}
  GET  /_fake/volumes[/<id>]               volume JSON (deleted ones too): volume_id, availability_zone,
                                            size_gib, volume_type, state, create_time, image, tags,
                                            multi_attach, root_of, attachments: [{volume_id, instance_id,
                                            device, status, attach_time, delete_on_termination,
                                            kernel_name, loop, rdev "7:3", node, sysfs, force, error}]
  POST /_fake/faults                       {action: Query Action|"*"|"imds"|"container", kind, count? (1;
                                            -1 forever), latency_ms? (1000), status? (5xx), path? (imds,
                                            container: substring)}
                                            kinds: throttle 5xx latency drop truncate malformed
                                            5xx_after_success drop_after_success truncate_after_success
  GET  /_fake/faults, POST /_fake/faults/reset
  POST /_fake/config                       {attach_delay_ms (200), detach_delay_ms (200), ec2_latency_ms (0),
                                            imds_latency_ms (0), imds_mode ("up"|"down"|"hang"|"500"),
                                            stuck_attach [vol..], token_ttl_max (null), credential_ttl_s
                                            (21600), max_results_cap (null), sts_credential_ttl_s (null:
                                            DurationSeconds or 3600), container_credential_ttl_s (21600)}
                                            -> the whole config
  GET  /_fake/config
  GET  /_fake/requests                     [{service "imds"|"ec2"|"sts"|"container", action (Query
                                            Action, IMDS or container path), method, instance (IMDS:
                                            instance id; Query: the signing access key id, null unsigned;
                                            container: the access key id handed out), status (0: no
                                            answer), t (time.monotonic()), fault?}]
  POST /_fake/requests/reset
  POST /_fake/web_identities               {token, role_arns: [arn..], expired? (false), subject?, issuer?,
                                            audience?}: STS accepts token for these roles (an unknown token
                                            is InvalidIdentityToken, an expired one ExpiredTokenException,
                                            another role AccessDenied) -> the identity
  GET  /_fake/web_identities
  GET  /_fake/sts/calls                    [{token (as received), role_arn, session_name, duration_s,
                                            result ("ok" or the error code), access_key_id,
                                            secret_access_key, session_token, expiration}]
  POST /_fake/container                    {path? (/v2/credentials/<uuid>), token? (null: no Authorization
                                            wanted), role_arn?} -> {path, token, role_arn, served, base, url}
  GET  /_fake/container                    [{path, token, role_arn, served: [access key ids handed out]}]
"""
