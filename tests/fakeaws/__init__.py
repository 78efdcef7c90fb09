# SPDX-License-Identifier: MIT
"""A fake AWS for lifeboat's integration tests, demo and benchmark.

One process serves, on 127.0.0.1 with ephemeral ports:

  * a fake IMDSv2 for any number of fake instances, selected by a path prefix
    (http://127.0.0.1:IMDS_PORT/<instance-id>/latest/...; /latest/... without a
    prefix is the first instance created);
  * a fake CloudWatch (Query API version 2010-08-01, SigV4 service "monitoring") on the
    same port: PutMetricData validated and answered like CloudWatch, the datapoints it
    took kept for the control API;
  * a fake EC2 Query API (version 2016-11-15) that verifies SigV4 like AWS,
    answers in AWS's XML, and REALLY attaches volumes: every EBS volume is a
    sparse image file, and attaching it sets up a loop device, a fake sysfs
    entry and a real block device node in the attaching instance's own
    directories (STATE/hosts/<instance-id>/{sys,dev}). Snapshots are sparse
    copies of a volume's image taken when CreateSnapshot is called
    (STATE/snapshots/), pending for snapshot_delay_ms, then completed; a volume
    created from one starts as a copy of it;
  * a fake Auto Scaling Query API (version 2011-01-01) on the same port, told apart by the
    SigV4 credential scope: groups, termination lifecycle hooks and the Terminating:Wait they
    hold an instance in at a scale-in, until CompleteLifecycleAction or a timeout (then the
    hook's default result), IMDS's target-lifecycle-state following it;
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
  store      EC2's state machine: attach, detach, snapshots, volumes from snapshots, tags,
             termination, events, credentials
  sigv4      the SigV4 verifier
  xmlout     the XML writer
  query      the Query protocol: parameters, filters, pagination, the error answer, the
             service base class and the endpoint that dispatches by credential scope
             (an unsigned request by its Action)
  ec2        the EC2 actions and the XML shapes of their answers
  cloudwatch CloudWatch's PutMetricData, its answers and errors, the datapoints taken
  autoscaling  groups, lifecycle hooks and scale-ins, and the Auto Scaling actions
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
                                            metadata_tags? (false: instance tags in IMDS),
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
                                            multi_attach, snapshot_id, iops, throughput, encrypted,
                                            root_of, attachments: [{volume_id, instance_id,
                                            device, status, attach_time, delete_on_termination,
                                            kernel_name, loop, rdev "7:3", node, sysfs, force, error}]
  GET  /_fake/snapshots[/<id>]             snapshot JSON (deleted ones too, state "deleted"): snapshot_id,
                                            volume_id, volume_size, state (pending|completed|error|
                                            deleted), progress, start_time, description, encrypted, tags,
                                            image, delete_requested
  POST /_fake/faults                       {action: Query Action|"*"|"imds"|"container", kind, count? (1;
                                            -1 forever), latency_ms? (1000), status? (5xx), path? (imds,
                                            container: substring), timeout_ms? (30000, barrier)}
                                            kinds: throttle 5xx latency drop truncate malformed
                                            5xx_after_success drop_after_success truncate_after_success
                                            latency_after_success (the action is done, the answer late)
                                            barrier (EC2 only: the next count requests of the action
                                            wait until all count arrived, then are answered together;
                                            after timeout_ms the ones there go on; the request log
                                            says barrier "released" or "broken")
  GET  /_fake/faults, POST /_fake/faults/reset
  POST /_fake/throttle                     {action: EC2 Action|"*", capacity (tokens), refill_per_s}
                                            EC2's request rate limit: a token bucket per action ("*":
                                            every action without a rule of its own gets one of that
                                            size), full at first; a request without a token gets
                                            RequestLimitExceeded (HTTP 503), logged fault "token_bucket"
  GET  /_fake/throttle                     {rules: [...], buckets: {action: {tokens, allowed, throttled}}}
  POST /_fake/throttle/reset
  POST /_fake/config                       {attach_delay_ms (200), detach_delay_ms (200), ec2_latency_ms (0),
                                            imds_latency_ms (0), imds_mode ("up"|"down"|"hang"|"500"),
                                            stuck_attach [vol..], token_ttl_max (null), credential_ttl_s
                                            (21600), max_results_cap (null), snapshot_delay_ms (1000; applies
                                            to pending snapshots too),
                                            volume_create_delay_ms (200), failing_snapshots [vol..]
                                            (their snapshots end in "error"), sts_credential_ttl_s (null:
                                            DurationSeconds or 3600), container_credential_ttl_s (21600)}
                                            -> the whole config
  GET  /_fake/config
  GET  /_fake/metrics                      the datapoints CloudWatch took, in order: [{namespace, metric_name,
                                            value, statistic_values, values, unit, timestamp (as sent),
                                            dimensions {name: value}, storage_resolution, received_at}]
  POST /_fake/metrics/reset
  POST /_fake/autoscaling/groups          {name, instances?: [instance id], hooks?: [hook]} -> the group
                                           hook: {name, transition? (termination), heartbeat_timeout? (3600 s,
                                            any >= 1 here), default_result? ("ABANDON"), global_timeout?
                                            (min(100 x heartbeat, 48 h))}; a member gets the tag
                                            aws:autoscaling:groupName and target-lifecycle-state InService
  GET  /_fake/autoscaling/groups[/<name>]  {name, hooks, instances: [{instance_id, lifecycle_state, scale_in_at,
                                            terminated_at, actions: [{hook, token, started, expires, deadline,
                                            heartbeats: [t..], result, ended_by, ended_at}]}]} (times: t)
  POST /_fake/autoscaling/groups/<name>/instances  {instance_id} -> the group
  POST /_fake/autoscaling/groups/<name>/hooks      hook -> the group
  POST /_fake/autoscaling/groups/<name>/scale-in   {instance_id}: Terminating:Wait (IMDS: Terminated) until
                                            every termination hook's action ended, then EC2 terminates it
                                           -> the instance
  GET  /_fake/requests                     [{service "imds"|"ec2"|"monitoring"|"autoscaling"|"sts"|"container",
                                            action (Query Action, IMDS or container path), method,
                                            instance (IMDS: instance id; Query: the signing access key
                                            id, null unsigned; container: the access key id handed
                                            out), status (0: no answer), t (time.monotonic()), fault?,
                                            barrier?}]
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
