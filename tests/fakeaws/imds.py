# SPDX-License-Identifier: MIT
"""IMDSv2 for every fake instance: tokens with a TTL (401 without one), the metadata tree,
the identity document, role credentials that expire, the spot / rebalance / Auto Scaling
events tests inject (the Auto Scaling target lifecycle state also follows the instance's group,
autoscaling.py), instance metadata tags when enabled; and IMDS's own ways of failing (down,
hanging, 500, faults)."""

from __future__ import annotations

import base64
import http
import json
import secrets
import threading
import time
import urllib.parse
from typing import Any

from .base import ACCOUNT_ID, ROLE_NAME, ROOT_DEVICE, Reply, iso_s, utcnow
from .config import Config
from .faults import Fault, FaultQueue
from .model import Instance
from .store import Store

IMDS_HTML = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{code} - {reason}</title>
 </head>
 <body>
  <h1>{code} - {reason}</h1>
 </body>
</html>
"""




def imds_error(code: int) -> Reply:
        reason = http.HTTPStatus(code).phrase
        return Reply(code, IMDS_HTML.format(code=code, reason=reason).encode(), "text/html")


def aws_json(d: dict[str, Any]) -> str:
        """JSON pretty-printed the way IMDS does it: '"key" : value', two-space indent."""
        lines = [f'  {json.dumps(k)} : {json.dumps(v)}' for k, v in d.items()]
        return "{\n" + ",\n".join(lines) + "\n}"


class ImdsService:
        """IMDSv2 (tokens required) for every fake instance."""

        MAX_TTL = 21600

        def __init__(self, store: Store, config: Config, faults: FaultQueue, stopping: threading.Event):
                self.store = store
                self.config = config
                self.faults = faults
                self.stopping = stopping
                self._lock = threading.Lock()
                self._tokens: dict[str, tuple[str, float]] = {}     # token -> (instance id, expiry)

        def answer(self, method: str, raw_path: str, headers: Any,
                   entry: dict[str, Any]) -> tuple[Reply | None, bool]:
                """The reply (None: drop the connection) and whether to truncate it, after the
                configured mode, latency and faults. Fills in the request log's entry."""
                path = urllib.parse.urlsplit(raw_path).path
                iid, rest = self.resolve(path)
                entry.update(action=rest, instance=iid)
                mode = self.config.imds_mode
                if mode == "down":
                        return None, False
                if mode == "hang":
                        while self.config.imds_mode == "hang" and not self.stopping.is_set():
                                time.sleep(0.05)
                        return None, False
                if self.config.imds_latency_ms:
                        time.sleep(self.config.imds_latency_ms / 1000)
                if mode == "500":
                        return imds_error(500), False
                fault = self.faults.take("imds", rest)
                if not fault:
                        return self.handle(method, iid, rest, headers), False
                entry["fault"] = fault.kind
                return self.faulted(fault, method, iid, rest, headers), fault.base_kind == "truncate"

        def faulted(self, fault: Fault, method: str, iid: str | None, path: str, headers: Any) -> Reply | None:
                kind = fault.base_kind
                if kind == "latency":
                        time.sleep(fault.latency_ms / 1000)
                        return self.handle(method, iid, path, headers)
                if kind == "throttle":
                        return imds_error(429)
                if kind == "5xx":
                        return imds_error(fault.status or 500)
                if kind == "drop":
                        return None
                reply = self.handle(method, iid, path, headers)
                if kind == "malformed" and reply.status == 200:
                        reply.body = b'{\n  "Code" : "Succ\x00<html>' + reply.body[: len(reply.body) // 3]
                return reply

        def resolve(self, path: str) -> tuple[str | None, str]:
                """Splits /<instance-id>/latest/... into (instance id, /latest/...)."""
                segs = path.split("/")
                if len(segs) > 1 and segs[1].startswith("i-"):
                        return segs[1], "/" + "/".join(segs[2:])
                return self.store.first_instance, path

        def handle(self, method: str, iid: str | None, path: str, headers: Any) -> Reply:
                with self.store.lock:
                        inst = self.store.instances.get(iid) if iid else None
                        if inst is None or not inst.running:
                                return imds_error(404)
                if path == "/latest/api/token":
                        if method != "PUT":
                                return imds_error(405)
                        return self.new_token(inst, headers)
                if method not in ("GET", "HEAD"):
                        return imds_error(405)
                if not self.token_valid(inst, headers.get("X-aws-ec2-metadata-token")):
                        return imds_error(401)
                return self.lookup(inst, path)

        def new_token(self, inst: Instance, headers: Any) -> Reply:
                if headers.get("X-Forwarded-For") is not None:
                        return imds_error(403)
                raw = headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                try:
                        ttl = int(raw)
                except (TypeError, ValueError):
                        return imds_error(400)
                if not 1 <= ttl <= self.MAX_TTL:
                        return imds_error(400)
                effective = min(ttl, self.config.token_ttl_max or ttl)
                token = base64.b64encode(secrets.token_bytes(42)).decode()
                with self._lock:
                        now = time.monotonic()
                        self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
                        self._tokens[token] = (inst.id, now + effective)
                return Reply(200, token.encode(), headers={"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": str(ttl)})

        def token_valid(self, inst: Instance, token: str | None) -> bool:
                if not token:
                        return False
                with self._lock:
                        entry = self._tokens.get(token.strip())
                return entry is not None and entry[0] == inst.id and time.monotonic() < entry[1]

        def tree(self, inst: Instance) -> dict[str, Any]:
                """The instance's metadata as nested dicts; callables are evaluated on read."""
                bdm = {"ami": ROOT_DEVICE, "root": ROOT_DEVICE}
                bdm.update(inst.launch_mappings)
                md: dict[str, Any] = {
                        "ami-id": inst.image_id,
                        "ami-launch-index": "0",
                        "block-device-mapping": bdm,
                        "hostname": f"ip-{inst.private_ip.replace('.', '-')}.ec2.internal",
                        "iam": {
                                "info": lambda: aws_json({
                                        "Code": "Success", "LastUpdated": iso_s(utcnow()),
                                        "InstanceProfileArn": f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{ROLE_NAME}",
                                        "InstanceProfileId": "AIPAFAKEFAKEFAKEFAKE0"}),
                                "security-credentials": {ROLE_NAME: lambda: self.credentials_json(inst)},
                        },
                        "instance-id": inst.id,
                        "instance-life-cycle": inst.lifecycle,
                        "instance-type": inst.instance_type,
                        "local-hostname": f"ip-{inst.private_ip.replace('.', '-')}.ec2.internal",
                        "local-ipv4": inst.private_ip,
                        "placement": {
                                "availability-zone": inst.availability_zone,
                                "availability-zone-id": inst.az_id,
                                "region": self.store.region,
                        },
                        "services": {"domain": "amazonaws.com", "partition": "aws"},
                }
                if inst.spot is not None and time.monotonic() >= inst.spot_visible_at:
                        # Formatted as in AWS's documentation: {"action": "terminate", "time": "..."}
                        md["spot"] = {"instance-action": json.dumps(inst.spot),
                                      "termination-time": inst.spot["time"]}
                if inst.rebalance is not None:
                        md["events"] = {"recommendations": {"rebalance": json.dumps(inst.rebalance)}}
                if inst.lifecycle_state is not None:
                        md["autoscaling"] = {"target-lifecycle-state": inst.lifecycle_state}
                if inst.metadata_tags:
                        # Keys with a '/' cannot be shown (AWS refuses to enable tags in IMDS then);
                        # values are served as they are.
                        md["tags"] = {"instance": {k: v for k, v in inst.tags.items() if "/" not in k}}
                return {
                        "meta-data": md,
                        "dynamic": {"instance-identity": {"document": lambda: self.identity_document(inst)}},
                }

        def identity_document(self, inst: Instance) -> str:
                return aws_json({
                        "accountId": ACCOUNT_ID,
                        "architecture": "x86_64",
                        "availabilityZone": inst.availability_zone,
                        "billingProducts": None,
                        "devpayProductCodes": None,
                        "marketplaceProductCodes": None,
                        "imageId": inst.image_id,
                        "instanceId": inst.id,
                        "instanceType": inst.instance_type,
                        "kernelId": None,
                        "pendingTime": iso_s(inst.launch_time),
                        "privateIp": inst.private_ip,
                        "ramdiskId": None,
                        "region": self.store.region,
                        "version": "2017-09-30",
                })

        def credentials_json(self, inst: Instance) -> str:
                c = self.store.role_credential(inst)
                return aws_json({
                        "Code": "Success",
                        "LastUpdated": iso_s(c.last_updated),
                        "Type": "AWS-HMAC",
                        "AccessKeyId": c.access_key_id,
                        "SecretAccessKey": c.secret_access_key,
                        "Token": c.token,
                        "Expiration": iso_s(c.expiration),
                })

        def lookup(self, inst: Instance, path: str) -> Reply:
                segs = path.split("/")[1:]
                if segs and segs[-1] == "":
                        segs.pop()              # a trailing slash asks for a listing
                if not segs or segs[0] != "latest" or "" in segs:
                        return imds_error(404)
                with self.store.lock:
                        node: Any = {"latest": self.tree(inst)}
                        for s in segs:
                                if not isinstance(node, dict) or s not in node:
                                        return imds_error(404)
                                node = node[s]
                        if isinstance(node, dict):
                                listing = sorted(k + "/" if isinstance(v, dict) else k for k, v in node.items())
                                return Reply(200, "\n".join(listing).encode())
                        value = node() if callable(node) else node
                        return Reply(200, value.encode())
