#!/usr/bin/python3
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
  * a control API under /_fake/ on the EC2 port (JSON, no signature) that
    tests use to create instances and volumes, inject events and faults, and
    read the request log.

Usage:
  /usr/bin/python3 tests/fakeaws.py --state-dir DIR [--region us-east-1] [--ready-file FILE]
                                    [--exit-with-parent]

The ready file gets {"imds_port": .., "ec2_port": .., "pid": ..} once both
ports listen. SIGTERM/SIGINT stop the fake; on the way out it detaches every
loop device it set up and removes its device nodes. Requests are logged to
DIR/fakeaws.log.

Standard library only; runs under /usr/bin/python3 (3.11). Needs root for
losetup and mknod.

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
  POST /_fake/faults                       {action: EC2 Action|"*"|"imds", kind, count? (1; -1 forever),
                                            latency_ms? (1000), status? (5xx), path? (imds: substring)}
                                            kinds: throttle 5xx latency drop truncate malformed
                                            5xx_after_success drop_after_success truncate_after_success
  GET  /_fake/faults, POST /_fake/faults/reset
  POST /_fake/config                       {attach_delay_ms (200), detach_delay_ms (200), ec2_latency_ms (0),
                                            imds_latency_ms (0), imds_mode ("up"|"down"|"hang"|"500"),
                                            stuck_attach [vol..], token_ttl_max (null), credential_ttl_s
                                            (21600), max_results_cap (null)} -> the whole config
  GET  /_fake/config
  GET  /_fake/requests                     [{service "imds"|"ec2", action (EC2 Action or IMDS path),
                                            method, instance (IMDS: instance id; EC2: access key id),
                                            status (0: no answer), t (time.monotonic()), fault?}]
  POST /_fake/requests/reset
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import http.server
import json
import math
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from xml.sax.saxutils import escape as xml_escape

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
ACCOUNT_ID = "123456789012"
STATIC_ACCESS_KEY = "AKIDLIFEBOATTEST"
STATIC_SECRET_KEY = "lifeboat/test/secret/key/0123456789abcdef"
ROLE_NAME = "lifeboat-role"
GIB = 1 << 30
SECTOR = 512
MAX_CLOCK_SKEW_S = 300
CREDENTIAL_REFRESH_S = 300       # IMDS hands out new role credentials this long before expiry
EBS_MODEL = "Amazon Elastic Block Store"
ROOT_DEVICE = "/dev/xvda"
ROOT_SIZE_GIB = 8
MAX_TAGS = 50
DEVICE_RE = re.compile(r"^/dev/(sd|xvd)([a-z]{1,2})([0-9]*)$")


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def utcnow() -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


def iso_ms(t: dt.datetime) -> str:
        """EC2's timestamp format: 2026-01-02T03:04:05.000Z."""
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def iso_s(t: dt.datetime) -> str:
        """IMDS's timestamp format: 2026-01-02T03:04:05Z."""
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str) -> str:
        """Ids look like real ones: vol-/i- followed by 17 hex digits."""
        return prefix + "-" + secrets.token_hex(9)[:17]


def xml_bool(v: bool) -> str:
        return "true" if v else "false"


def parse_bool(name: str, value: str) -> bool:
        if value.lower() == "true":
                return True
        if value.lower() == "false":
                return False
        raise AwsError("InvalidParameterValue",
                       f"Invalid value '{value}' for {name}. Expecting 'true' or 'false'.")


def device_slot(device: str) -> str | None:
        """/dev/sdf and /dev/xvdf are the same slot ("f"); None if not an EBS device name."""
        m = DEVICE_RE.match(device)
        return m.group(2) if m else None


def wildcard_match(pattern: str, value: str) -> bool:
        """EC2 filter matching: case-sensitive, '*' and '?' wildcards, '\\' escapes."""
        out = []
        i = 0
        while i < len(pattern):
                c = pattern[i]
                if c == "\\" and i + 1 < len(pattern):
                        out.append(re.escape(pattern[i + 1]))
                        i += 2
                        continue
                out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
                i += 1
        return re.fullmatch("".join(out), value, re.DOTALL) is not None


def indexed(params: dict[str, str], prefix: str) -> list[str]:
        """Values of PREFIX.1, PREFIX.2, ... in index order."""
        found = []
        rx = re.compile(re.escape(prefix) + r"\.(\d+)$")
        for k, v in params.items():
                m = rx.match(k)
                if m:
                        found.append((int(m.group(1)), v))
        return [v for _, v in sorted(found)]


def indexed_groups(params: dict[str, str], prefix: str) -> list[dict[str, str]]:
        """PREFIX.N.REST=value grouped by N: [{REST: value, ...}, ...] in index order."""
        groups: dict[int, dict[str, str]] = {}
        rx = re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)$")
        for k, v in params.items():
                m = rx.match(k)
                if m:
                        groups.setdefault(int(m.group(1)), {})[m.group(2)] = v
        return [groups[n] for n in sorted(groups)]


class Logger:
        """Line-oriented log file shared by all threads."""

        def __init__(self, path: Path):
                self._f = open(path, "a", buffering=1, encoding="utf-8")
                self._lock = threading.Lock()

        def __call__(self, what: str, msg: str) -> None:
                line = f"{iso_ms(utcnow())} [{what}] {msg}\n"
                with self._lock:
                        self._f.write(line)

        def close(self) -> None:
                with self._lock:
                        self._f.close()


class AwsError(Exception):
        """An error answer of the EC2 API: HTTP status, Code and Message."""

        def __init__(self, code: str, message: str, status: int = 400):
                super().__init__(f"{code}: {message}")
                self.code = code
                self.message = message
                self.status = status


class ControlError(Exception):
        """A bad request to the /_fake control API."""

        def __init__(self, message: str, status: int = 400):
                super().__init__(message)
                self.status = status


# --------------------------------------------------------------------------
# configuration, faults, request log
# --------------------------------------------------------------------------

@dataclass
class Config:
        attach_delay_ms: int = 200
        detach_delay_ms: int = 200
        ec2_latency_ms: int = 0
        imds_latency_ms: int = 0
        imds_mode: str = "up"                  # up | down | hang | 500
        stuck_attach: list[str] = field(default_factory=list)
        token_ttl_max: int | None = None       # cap on IMDS token lifetime (s)
        credential_ttl_s: int = 21600          # lifetime of role credentials
        max_results_cap: int | None = None     # page size cap of Describe*

        INT_KEYS = ("attach_delay_ms", "detach_delay_ms", "ec2_latency_ms", "imds_latency_ms",
                    "token_ttl_max", "credential_ttl_s", "max_results_cap")
        IMDS_MODES = ("up", "down", "hang", "500")

        def update(self, changes: dict[str, Any]) -> None:
                """Validates everything first, so a bad key changes nothing."""
                checked = {}
                for key, value in changes.items():
                        if key in self.INT_KEYS:
                                nullable = key in ("token_ttl_max", "max_results_cap")
                                if value is None and nullable:
                                        checked[key] = None
                                        continue
                                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                                        raise ControlError(f"{key} must be a non-negative integer")
                                if key in ("token_ttl_max", "credential_ttl_s", "max_results_cap") and value < 1:
                                        raise ControlError(f"{key} must be >= 1")
                                checked[key] = value
                        elif key == "imds_mode":
                                if value not in self.IMDS_MODES:
                                        raise ControlError(f"imds_mode must be one of {', '.join(self.IMDS_MODES)}")
                                checked[key] = value
                        elif key == "stuck_attach":
                                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                                        raise ControlError("stuck_attach must be a list of volume ids")
                                checked[key] = list(value)
                        else:
                                raise ControlError(f"unknown config key {key!r}")
                for key, value in checked.items():
                        setattr(self, key, value)

        def as_json(self) -> dict[str, Any]:
                return {k: getattr(self, k) for k in (f.name for f in dataclasses.fields(self))}


@dataclass
class Fault:
        id: int
        action: str             # an EC2 Action, "*" (any EC2 action) or "imds"
        kind: str
        remaining: int          # -1: forever
        latency_ms: int = 1000
        status: int | None = None
        path: str | None = None # imds only: substring of the request path

        KINDS = ("throttle", "5xx", "latency", "drop", "truncate", "malformed",
                 "5xx_after_success", "drop_after_success", "truncate_after_success")

        @property
        def after_success(self) -> bool:
                return self.kind.endswith("_after_success")

        @property
        def base_kind(self) -> str:
                return self.kind.removesuffix("_after_success")

        def as_json(self) -> dict[str, Any]:
                return dataclasses.asdict(self)


class FaultQueue:
        """Faults injected by tests, consumed by the next matching requests."""

        def __init__(self):
                self._lock = threading.Lock()
                self._faults: list[Fault] = []
                self._next_id = 1

        def add(self, spec: dict[str, Any]) -> Fault:
                action = spec.get("action")
                kind = spec.get("kind")
                if not isinstance(action, str) or not action:
                        raise ControlError("fault needs an action (EC2 Action, '*' or 'imds')")
                if kind not in Fault.KINDS:
                        raise ControlError(f"fault kind must be one of {', '.join(Fault.KINDS)}")
                count = spec.get("count", 1)
                if not isinstance(count, int) or count == 0 or count < -1:
                        raise ControlError("count must be a positive integer, or -1 for forever")
                status = spec.get("status")
                if status is not None and (not isinstance(status, int) or not 500 <= status <= 599):
                        raise ControlError("status must be a 5xx code")
                latency = spec.get("latency_ms", 1000)
                if not isinstance(latency, int) or latency < 0:
                        raise ControlError("latency_ms must be a non-negative integer")
                path = spec.get("path")
                unknown = set(spec) - {"action", "kind", "count", "status", "latency_ms", "path"}
                if unknown:
                        raise ControlError(f"unknown fault keys: {', '.join(sorted(unknown))}")
                with self._lock:
                        f = Fault(self._next_id, action, kind, count, latency, status, path)
                        self._next_id += 1
                        self._faults.append(f)
                        return f

        def take(self, service: str, action: str) -> Fault | None:
                """The first fault matching this request, with its count consumed."""
                with self._lock:
                        for f in self._faults:
                                if service == "imds":
                                        if f.action != "imds" or (f.path and f.path not in action):
                                                continue
                                elif f.action not in ("*", action):
                                        continue
                                if f.remaining > 0:
                                        f.remaining -= 1
                                if f.remaining == 0:
                                        self._faults.remove(f)
                                return dataclasses.replace(f)
                return None

        def list(self) -> list[dict[str, Any]]:
                with self._lock:
                        return [f.as_json() for f in self._faults]

        def reset(self) -> None:
                with self._lock:
                        self._faults.clear()


class RequestLog:
        """Every IMDS and EC2 request, for tests and benchmarks. t is time.monotonic()
        (CLOCK_MONOTONIC, comparable with the test process's own clock)."""

        def __init__(self):
                self._lock = threading.Lock()
                self._entries: list[dict[str, Any]] = []

        def add(self, entry: dict[str, Any]) -> None:
                with self._lock:
                        self._entries.append(entry)

        def list(self) -> list[dict[str, Any]]:
                with self._lock:
                        return [dict(e) for e in self._entries]

        def reset(self) -> None:
                with self._lock:
                        self._entries.clear()


# --------------------------------------------------------------------------
# the model: volumes, attachments, instances
# --------------------------------------------------------------------------

@dataclass(eq=False)
class Attachment:
        volume_id: str
        instance_id: str
        device: str                     # the requested name, e.g. /dev/sdf
        status: str                     # attaching | attached | detaching | busy
        attach_time: dt.datetime
        delete_on_termination: bool
        # the device side, once it appeared on the instance
        kernel_name: str | None = None  # nvme1n1 / xvdf
        loop: str | None = None         # /dev/loopN
        rdev: int | None = None
        force: bool = False
        error: str | None = None

        def as_json(self, host: "Host | None") -> dict[str, Any]:
                d = {
                        "volume_id": self.volume_id,
                        "instance_id": self.instance_id,
                        "device": self.device,
                        "status": self.status,
                        "attach_time": iso_ms(self.attach_time),
                        "delete_on_termination": self.delete_on_termination,
                        "kernel_name": self.kernel_name,
                        "loop": self.loop,
                        "rdev": f"{os.major(self.rdev)}:{os.minor(self.rdev)}" if self.rdev is not None else None,
                        "node": None,
                        "sysfs": None,
                        "force": self.force,
                        "error": self.error,
                }
                if host and self.kernel_name:
                        if self.loop:
                                d["node"] = str(host.dev_root / self.kernel_name)
                        d["sysfs"] = str(host.sysfs_root / "class" / "block" / self.kernel_name)
                return d


@dataclass(eq=False)
class Volume:
        id: str
        availability_zone: str
        size_gib: int
        volume_type: str
        state: str                      # creating | available | in-use | deleted | error
        create_time: dt.datetime
        image: str | None               # backing file; None for root volumes
        tags: dict[str, str] = field(default_factory=dict)
        multi_attach: bool = False
        snapshot_id: str = ""
        encrypted: bool = False
        root_of: str | None = None      # instance id when this is a root volume
        attachments: list[Attachment] = field(default_factory=list)

        @property
        def iops(self) -> int | None:
                if self.volume_type == "gp3":
                        return 3000
                if self.volume_type == "gp2":
                        return max(100, min(16000, 3 * self.size_gib))
                if self.volume_type in ("io1", "io2"):
                        return 100 * self.size_gib
                return None

        @property
        def throughput(self) -> int | None:
                return 125 if self.volume_type == "gp3" else None

        def as_json(self, hosts: dict[str, "Host"]) -> dict[str, Any]:
                return {
                        "volume_id": self.id,
                        "availability_zone": self.availability_zone,
                        "size_gib": self.size_gib,
                        "volume_type": self.volume_type,
                        "state": self.state,
                        "create_time": iso_ms(self.create_time),
                        "image": self.image,
                        "tags": dict(self.tags),
                        "multi_attach": self.multi_attach,
                        "root_of": self.root_of,
                        "attachments": [a.as_json(hosts.get(a.instance_id)) for a in self.attachments],
                }


@dataclass
class RoleCredential:
        access_key_id: str
        secret_access_key: str
        token: str | None
        expiration: dt.datetime | None       # None: never expires
        last_updated: dt.datetime
        instance_id: str | None = None

        def expired(self, now: dt.datetime) -> bool:
                return self.expiration is not None and now >= self.expiration

        @classmethod
        def issue(cls, instance_id: str, ttl_s: int) -> "RoleCredential":
                now = utcnow().replace(microsecond=0)
                akid = "ASIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
                secret = base64.b64encode(secrets.token_bytes(30)).decode()
                token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(600)).decode()
                return cls(akid, secret, token, now + dt.timedelta(seconds=ttl_s), now, instance_id)


@dataclass(eq=False)
class Instance:
        id: str
        availability_zone: str
        az_id: str
        instance_type: str
        lifecycle: str                  # spot | on-demand
        device_style: str               # nvme | xen
        attachment_slots: int
        host: "Host"
        launch_time: dt.datetime
        image_id: str
        private_ip: str
        tags: dict[str, str] = field(default_factory=dict)
        state: str = "running"
        root_volume_id: str = ""
        launch_mappings: dict[str, str] = field(default_factory=dict)   # IMDS ebsN -> device
        spot: dict[str, Any] | None = None
        spot_visible_at: float = 0.0    # time.monotonic() when the spot notice appears
        rebalance: dict[str, Any] | None = None
        lifecycle_state: str | None = None
        credential: RoleCredential | None = None

        @property
        def running(self) -> bool:
                return self.state == "running"

        def as_json(self, imds_port: int) -> dict[str, Any]:
                return {
                        "instance_id": self.id,
                        "availability_zone": self.availability_zone,
                        "az_id": self.az_id,
                        "instance_type": self.instance_type,
                        "lifecycle": self.lifecycle,
                        "device_style": self.device_style,
                        "attachment_slots": self.attachment_slots,
                        "state": self.state,
                        "root_volume_id": self.root_volume_id,
                        "tags": dict(self.tags),
                        "sysfs_root": str(self.host.sysfs_root),
                        "dev_root": str(self.host.dev_root),
                        "imds_endpoint": f"http://127.0.0.1:{imds_port}/{self.id}",
                        "events": {"spot": self.spot, "rebalance": self.rebalance,
                                   "lifecycle_state": self.lifecycle_state},
                }


# --------------------------------------------------------------------------
# the device side: loop devices, fake sysfs, device nodes
# --------------------------------------------------------------------------

class Host:
        """The fake machine of one instance: a sysfs tree and a /dev directory laid out
        like the kernel's (class/block and block entries are symlinks into devices/)."""

        def __init__(self, root: Path, style: str):
                self.root = root
                self.style = style
                self.sysfs_root = root / "sys"
                self.dev_root = root / "dev"
                self._nvme_in_use: set[int] = set()
                for d in ("class/block", "block", "devices"):
                        (self.sysfs_root / d).mkdir(parents=True, exist_ok=True)
                if style == "nvme":
                        (self.sysfs_root / "class/nvme").mkdir(parents=True, exist_ok=True)
                self.dev_root.mkdir(parents=True, exist_ok=True)

        # -- naming --

        def allocate_name(self, device: str, root: bool = False) -> str:
                """The kernel name the next disk gets: nvmeKn1 (lowest free K, 0 is the
                root) or xvdX for the requested /dev/sdX."""
                if self.style == "nvme":
                        k = 0 if root else 1
                        while k in self._nvme_in_use:
                                k += 1
                        self._nvme_in_use.add(k)
                        return f"nvme{k}n1"
                m = DEVICE_RE.match(device)
                assert m
                return "xvd" + m.group(2)

        def _disk_dir(self, name: str) -> Path:
                if self.style == "nvme":
                        k = int(name[4:-2])
                        return self._nvme_controller_dir(k) / name
                return self._vbd_dir(name) / "block" / name

        def _nvme_controller_dir(self, k: int) -> Path:
                return self.sysfs_root / "devices/pci0000:00" / f"0000:00:{0x10 + k:02x}.0" / "nvme" / f"nvme{k}"

        def _vbd_dir(self, name: str) -> Path:
                letters = name[3:]
                index = 0
                for c in letters:
                        index = index * 26 + (ord(c) - ord("a") + 1)
                return self.sysfs_root / "devices" / f"vbd-{51712 + 16 * (index - 1)}"

        # -- sysfs entries --

        def add_disk(self, name: str, volume_id: str, rdev: int, sectors: int, with_node: bool) -> None:
                """Creates the disk's sysfs entry (built aside, then renamed into place so a
                reader never sees it half written) and then its /dev node."""
                maj, mnr = os.major(rdev), os.minor(rdev)
                disk_files = {
                        "dev": f"{maj}:{mnr}\n",
                        "size": f"{sectors}\n",
                        "ro": "0\n",
                        "removable": "0\n",
                        "uevent": f"MAJOR={maj}\nMINOR={mnr}\nDEVNAME={name}\nDEVTYPE=disk\n",
                }
                if self.style == "nvme":
                        k = int(name[4:-2])
                        top = self._nvme_controller_dir(k)
                        tmp = top.with_name(f".{top.name}.tmp")
                        disk = tmp / name
                        disk.mkdir(parents=True)
                        _write_files(tmp, {
                                "model": EBS_MODEL.ljust(40) + "\n",
                                "serial": volume_id.replace("-", "").ljust(20) + "\n",
                                "firmware_rev": "1.0".ljust(8) + "\n",
                                "state": "live\n",
                        })
                        (disk / "device").symlink_to(f"../../nvme{k}")
                else:
                        top = self._vbd_dir(name)
                        tmp = top.with_name(f".{top.name}.tmp")
                        disk = tmp / "block" / name
                        disk.mkdir(parents=True)
                        (disk / "device").symlink_to("../../../" + top.name)
                        _write_files(tmp, {"devtype": "vbd\n", "nodename": f"device/vbd/{top.name[4:]}\n"})
                _write_files(disk, disk_files)
                (disk / "holders").mkdir()
                (disk / "slaves").mkdir()
                os.rename(tmp, top)
                real = self._disk_dir(name)
                rel = os.path.relpath(real, self.sysfs_root / "class/block")
                (self.sysfs_root / "class/block" / name).symlink_to(rel)
                (self.sysfs_root / "block" / name).symlink_to(os.path.relpath(real, self.sysfs_root / "block"))
                if self.style == "nvme":
                        (self.sysfs_root / "class/nvme" / top.name).symlink_to(
                                os.path.relpath(top, self.sysfs_root / "class/nvme"))
                if with_node:
                        node = self.dev_root / name
                        tmp_node = self.dev_root / f".{name}.tmp"
                        _unlink(tmp_node)
                        os.mknod(tmp_node, stat.S_IFBLK | 0o660, rdev)
                        os.rename(tmp_node, node)

        def remove_disk(self, name: str) -> None:
                """Node first (udev removes it on the way out), then the sysfs entry."""
                _unlink(self.dev_root / name)
                _unlink(self.sysfs_root / "class/block" / name)
                _unlink(self.sysfs_root / "block" / name)
                if self.style == "nvme":
                        k = int(name[4:-2])
                        _unlink(self.sysfs_root / "class/nvme" / f"nvme{k}")
                        _rmtree(self._nvme_controller_dir(k))
                        self._nvme_in_use.discard(k)
                else:
                        _rmtree(self._vbd_dir(name))


def _write_files(d: Path, files: dict[str, str]) -> None:
        for rel, content in files.items():
                p = d / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(content)


def _unlink(p: Path) -> None:
        try:
                p.unlink()
        except FileNotFoundError:
                pass


def _rmtree(p: Path) -> None:
        """Removes a tree without following symlinks."""
        if not p.exists() and not p.is_symlink():
                return
        if p.is_symlink() or not p.is_dir():
                p.unlink()
                return
        for child in p.iterdir():
                _rmtree(child)
        p.rmdir()


class Attacher:
        """Loop devices: set up on attach, torn down on detach and at exit."""

        def __init__(self, log: Logger):
                self._log = log
                self._lock = threading.Lock()
                self._loops: set[str] = set()

        def setup(self, image: str) -> tuple[str, int]:
                r = subprocess.run(["losetup", "--find", "--show", image],
                                   capture_output=True, text=True, timeout=30)
                if r.returncode != 0:
                        raise OSError(f"losetup --find --show {image}: {r.stderr.strip()}")
                loop = r.stdout.strip()
                with self._lock:
                        self._loops.add(loop)
                rdev = os.stat(loop).st_rdev
                self._log("attacher", f"{image} -> {loop} ({os.major(rdev)}:{os.minor(rdev)})")
                return loop, rdev

        def teardown(self, loop: str) -> None:
                r = subprocess.run(["losetup", "-d", loop], capture_output=True, text=True, timeout=30)
                if r.returncode != 0:
                        self._log("attacher", f"losetup -d {loop} failed: {r.stderr.strip()}")
                else:
                        self._log("attacher", f"detached {loop}")
                with self._lock:
                        self._loops.discard(loop)

        @staticmethod
        def mounted(rdev: int) -> bool:
                """Whether a filesystem on this device is mounted (field 3 of mountinfo)."""
                want = f"{os.major(rdev)}:{os.minor(rdev)}"
                try:
                        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
                                return any(line.split()[2] == want for line in f if line.strip())
                except OSError:
                        return False

        def teardown_all(self) -> None:
                with self._lock:
                        loops = sorted(self._loops)
                for loop in loops:
                        self.teardown(loop)


# --------------------------------------------------------------------------
# the state machine
# --------------------------------------------------------------------------

class Store:
        """All EC2 state. Every method runs under self.lock (an RLock): attach and detach
        must be atomic because many instances race for the same volumes."""

        def __init__(self, state_dir: Path, region: str, config: Config, attacher: Attacher,
                     log: Logger, stopping: threading.Event):
                self.lock = threading.RLock()
                self.state_dir = state_dir
                self.region = region
                self.config = config
                self.attacher = attacher
                self.log = log
                self.stopping = stopping
                self.volumes: dict[str, Volume] = {}
                self.instances: dict[str, Instance] = {}
                self.first_instance: str | None = None
                self.credentials: dict[str, RoleCredential] = {
                        STATIC_ACCESS_KEY: RoleCredential(STATIC_ACCESS_KEY, STATIC_SECRET_KEY, None, None, utcnow()),
                }
                (state_dir / "volumes").mkdir(parents=True, exist_ok=True)
                (state_dir / "hosts").mkdir(parents=True, exist_ok=True)

        # -- lookups --

        def volume(self, vid: str) -> Volume:
                v = self.volumes.get(vid)
                if v is None or v.state == "deleted":
                        raise AwsError("InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")
                return v

        def instance(self, iid: str) -> Instance:
                i = self.instances.get(iid)
                if i is None:
                        raise AwsError("InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist")
                return i

        def attachments_of(self, iid: str) -> list[tuple[Volume, Attachment]]:
                return [(v, a) for v in self.volumes.values() for a in v.attachments if a.instance_id == iid]

        # -- creation (control API) --

        def create_volume(self, *, availability_zone: str, size_gib: int | None = None, image: str | None = None,
                          tags: dict[str, str] | None = None, multi_attach: bool = False,
                          volume_type: str = "gp3", state: str = "available", root_of: str | None = None,
                          volume_id: str | None = None, create_time: dt.datetime | None = None) -> Volume:
                with self.lock:
                        vid = volume_id or new_id("vol")
                        if not re.fullmatch(r"vol-[0-9a-f]{8,17}", vid):
                                raise ControlError("volume_id must look like vol-0123456789abcdef0")
                        if vid in self.volumes:
                                raise ControlError(f"volume {vid} exists", 409)
                        if state not in ("creating", "available", "error"):
                                raise ControlError("state must be creating, available or error")
                        if root_of is None:
                                image, size_gib = self._prepare_image(vid, image, size_gib)
                        v = Volume(vid, availability_zone, size_gib or ROOT_SIZE_GIB, volume_type, state,
                                   create_time or utcnow(), image, dict(tags or {}), multi_attach, root_of=root_of)
                        self.volumes[vid] = v
                        self.log("store", f"created {vid} in {availability_zone}, {v.size_gib} GiB, image {image}")
                        return v

        def _prepare_image(self, vid: str, image: str | None, size_gib: int | None) -> tuple[str, int]:
                if image is not None:
                        p = Path(image)
                        if not p.is_file():
                                raise ControlError(f"image {image} is not a file")
                        if size_gib is None:
                                size_gib = max(1, math.ceil(p.stat().st_size / GIB))
                        return str(p.resolve()), size_gib
                size_gib = size_gib or 1
                p = self.state_dir / "volumes" / f"{vid}.img"
                with open(p, "wb") as f:
                        f.truncate(size_gib * GIB)
                return str(p), size_gib

        def create_instance(self, spec: dict[str, Any]) -> tuple[Instance, str | None]:
                known = {"instance_id", "availability_zone", "az_id", "instance_type", "lifecycle",
                         "device_style", "attachment_slots", "buffer", "tags"}
                unknown = set(spec) - known
                if unknown:
                        raise ControlError(f"unknown instance keys: {', '.join(sorted(unknown))}")
                with self.lock:
                        iid = spec.get("instance_id") or new_id("i")
                        if iid in self.instances:
                                raise ControlError(f"instance {iid} exists", 409)
                        if not re.fullmatch(r"i-[0-9a-f]{8,17}", iid):
                                raise ControlError("instance_id must look like i-0123456789abcdef0")
                        az = spec.get("availability_zone") or f"{self.region}a"
                        style = spec.get("device_style", "nvme")
                        if style not in ("nvme", "xen"):
                                raise ControlError("device_style must be nvme or xen")
                        lifecycle = spec.get("lifecycle", "spot")
                        if lifecycle not in ("spot", "on-demand"):
                                raise ControlError("lifecycle must be spot or on-demand")
                        slots = spec.get("attachment_slots", 27)
                        if not isinstance(slots, int) or slots < 1:
                                raise ControlError("attachment_slots must be a positive integer")
                        n = len(self.instances) + 1
                        inst = Instance(
                                id=iid, availability_zone=az, az_id=spec.get("az_id") or self._az_id(az),
                                instance_type=spec.get("instance_type", "m5.large"), lifecycle=lifecycle,
                                device_style=style, attachment_slots=slots,
                                host=Host(self.state_dir / "hosts" / iid, style),
                                launch_time=utcnow(), image_id="ami-0abcdef1234567890",
                                private_ip=f"10.0.{n // 250}.{n % 250 + 4}", tags=dict(spec.get("tags") or {}))
                        self.instances[iid] = inst
                        if self.first_instance is None:
                                self.first_instance = iid
                        self._launch_root(inst)
                        buffer_id = None
                        if spec.get("buffer"):
                                buffer_id = self._launch_buffer(inst, spec["buffer"])
                        self.log("store", f"launched {iid} in {az} ({style}), buffer {buffer_id}")
                        return inst, buffer_id

        def _az_id(self, az: str) -> str:
                """us-east-1a -> use1-az1, ap-southeast-2b -> apse2-az2 (AWS's naming scheme;
                the real letter-to-id mapping differs per account, which is the point of AZ ids)."""
                parts = self.region.split("-")
                short = parts[0] + "".join(p[0] + ("e" if p.endswith("east") and len(p) > 4 else
                                                   "w" if p.endswith("west") and len(p) > 4 else "")
                                           for p in parts[1:-1]) + parts[-1]
                letter = az[-1] if az and az[-1].isalpha() else "a"
                return f"{short}-az{ord(letter) - ord('a') + 1}"

        def _launch_root(self, inst: Instance) -> None:
                v = self.create_volume(availability_zone=inst.availability_zone, size_gib=ROOT_SIZE_GIB,
                                       root_of=inst.id)
                a = Attachment(v.id, inst.id, ROOT_DEVICE, "attached", inst.launch_time, True)
                v.attachments.append(a)
                v.state = "in-use"
                inst.root_volume_id = v.id
                # The root disk shows in sysfs (with its serial) but gets no node: lifeboat
                # must tell it apart from the buffer by serial, not by position.
                a.kernel_name = inst.host.allocate_name(ROOT_DEVICE, root=True)
                fake_rdev = os.makedev(259, 0) if inst.device_style == "nvme" else os.makedev(202, 0)
                inst.host.add_disk(a.kernel_name, v.id, fake_rdev, ROOT_SIZE_GIB * GIB // SECTOR, with_node=False)

        def _launch_buffer(self, inst: Instance, spec: dict[str, Any]) -> str:
                known = {"device", "size_gib", "image", "delete_on_termination", "tags", "volume_type"}
                unknown = set(spec) - known
                if unknown:
                        raise ControlError(f"unknown buffer keys: {', '.join(sorted(unknown))}")
                device = spec.get("device", "/dev/sdf")
                if device_slot(device) is None or device_slot(device) == "a":
                        raise ControlError(f"bad buffer device {device}")
                v = self.create_volume(availability_zone=inst.availability_zone, size_gib=spec.get("size_gib"),
                                       image=spec.get("image"), tags=spec.get("tags"),
                                       volume_type=spec.get("volume_type", "gp3"))
                a = Attachment(v.id, inst.id, device, "attaching", inst.launch_time,
                               bool(spec.get("delete_on_termination", True)))
                v.attachments.append(a)
                v.state = "in-use"
                inst.launch_mappings[f"ebs{len(inst.launch_mappings) + 1}"] = device.removeprefix("/dev/")
                self._make_device(inst, v, a)
                if a.error:
                        raise ControlError(f"could not attach the buffer: {a.error}", 500)
                return v.id

        # -- the device side of attachments (called with the lock held) --

        def _make_device(self, inst: Instance, v: Volume, a: Attachment) -> None:
                try:
                        loop, rdev = self.attacher.setup(v.image)
                except (OSError, subprocess.SubprocessError) as e:
                        a.error = str(e)
                        self.log("store", f"attach {v.id} to {inst.id} failed: {e}")
                        return
                a.loop, a.rdev = loop, rdev
                a.kernel_name = inst.host.allocate_name(a.device)
                inst.host.add_disk(a.kernel_name, v.id, rdev, os.path.getsize(v.image) // SECTOR, with_node=True)
                a.status = "attached"
                self.log("store", f"{v.id} attached to {inst.id} as {a.kernel_name} ({loop})")

        def _remove_device(self, inst: Instance, a: Attachment) -> None:
                if a.kernel_name:
                        inst.host.remove_disk(a.kernel_name)
                if a.loop:
                        self.attacher.teardown(a.loop)
                a.kernel_name = a.loop = a.rdev = None

        def _drop_attachment(self, v: Volume, a: Attachment) -> None:
                v.attachments.remove(a)
                if not v.attachments and v.state == "in-use":
                        v.state = "available"

        def _delete_volume_now(self, v: Volume) -> None:
                v.state = "deleted"
                if v.image:
                        try:
                                os.unlink(v.image)
                        except FileNotFoundError:
                                pass
                self.log("store", f"deleted {v.id}")

        # -- EC2 actions --

        def attach_volume(self, vid: str, iid: str, device: str) -> Attachment:
                with self.lock:
                        slot = device_slot(device)
                        if slot is None:
                                raise AwsError("InvalidParameterValue",
                                               f"Value ({device}) for parameter device is invalid. "
                                               f"{device} is not a valid EBS device name.")
                        inst = self.instance(iid)
                        v = self.volume(vid)
                        if not inst.running:
                                raise AwsError("IncorrectInstanceState",
                                               f"The instance '{iid}' is not in the 'running' state.")
                        if v.availability_zone != inst.availability_zone:
                                raise AwsError("InvalidVolume.ZoneMismatch",
                                               f"The volume '{vid}' is not in the same availability zone "
                                               f"as instance '{iid}'")
                        if v.attachments and (not v.multi_attach or any(a.instance_id == iid for a in v.attachments)):
                                raise AwsError("VolumeInUse", f"{vid} is already attached to an instance")
                        if v.state not in ("available", "in-use"):
                                raise AwsError("IncorrectState", f"{vid} is not 'available'.")
                        used = self.attachments_of(iid)
                        if any(device_slot(a.device) == slot for _, a in used):
                                raise AwsError("InvalidParameterValue", f"Attachment point {device} is already in use")
                        if len(used) >= inst.attachment_slots:
                                raise AwsError("AttachmentLimitExceeded",
                                               f"You have reached the maximum number of volumes that can be "
                                               f"attached to instance '{iid}'")
                        a = Attachment(vid, iid, device, "attaching", utcnow(), False)
                        v.attachments.append(a)
                        v.state = "in-use"
                        self.log("store", f"attaching {vid} to {iid} at {device}")
                        threading.Thread(target=self._complete_attach, args=(inst, v, a),
                                         name=f"attach-{vid}", daemon=True).start()
                        return dataclasses.replace(a)

        def _complete_attach(self, inst: Instance, v: Volume, a: Attachment) -> None:
                time.sleep(self.config.attach_delay_ms / 1000)
                while not self.stopping.is_set():
                        with self.lock:
                                if a not in v.attachments or a.status != "attaching":
                                        return          # detached or terminated meanwhile
                                if v.id not in self.config.stuck_attach:
                                        self._make_device(inst, v, a)
                                        return
                        time.sleep(0.1)

        def detach_volume(self, vid: str, iid: str | None, device: str | None, force: bool) -> Attachment:
                with self.lock:
                        v = self.volume(vid)
                        if not v.attachments:
                                raise AwsError("IncorrectState", f"{vid} is in the '{v.state}' state.")
                        matching = [a for a in v.attachments
                                    if (iid is None or a.instance_id == iid) and (device is None or a.device == device)]
                        if not matching:
                                raise AwsError("InvalidAttachment.NotFound",
                                               f"The volume '{vid}' is not attached to instance '{iid or ''}'"
                                               + (f" at {device}" if device else ""))
                        if len(matching) > 1:
                                raise AwsError("MissingParameter",
                                               "The request must contain the parameter instanceId")
                        a = matching[0]
                        if v.root_of is not None and self.instances[v.root_of].running:
                                raise AwsError("IncorrectState",
                                               f"Unable to detach root volume '{vid}' from instance '{a.instance_id}'")
                        if force:
                                a.force = True
                        if a.status in ("detaching", "busy"):
                                return dataclasses.replace(a, status="detaching")
                        a.status = "detaching"
                        self.log("store", f"detaching {vid} from {a.instance_id}{' (force)' if force else ''}")
                        inst = self.instances[a.instance_id]
                        threading.Thread(target=self._complete_detach, args=(inst, v, a),
                                         name=f"detach-{vid}", daemon=True).start()
                        return dataclasses.replace(a)

        def _complete_detach(self, inst: Instance, v: Volume, a: Attachment) -> None:
                time.sleep(self.config.detach_delay_ms / 1000)
                while not self.stopping.is_set():
                        with self.lock:
                                if a not in v.attachments:
                                        return          # the instance was terminated meanwhile
                                if a.rdev is not None and not a.force and Attacher.mounted(a.rdev):
                                        # Like AWS: a mounted volume does not go away until unmounted.
                                        if a.status != "busy":
                                                self.log("store", f"{v.id} is mounted on {inst.id}: busy")
                                        a.status = "busy"
                                else:
                                        self._remove_device(inst, a)
                                        self._drop_attachment(v, a)
                                        self.log("store", f"{v.id} detached from {inst.id}")
                                        return
                        time.sleep(0.2)

        def delete_volume(self, vid: str) -> None:
                with self.lock:
                        v = self.volume(vid)
                        if v.attachments:
                                raise AwsError("VolumeInUse",
                                               f"Volume {vid} is currently attached to {v.attachments[0].instance_id}")
                        if v.state not in ("available", "error", "creating"):
                                raise AwsError("IncorrectState", f"The volume '{vid}' is in the '{v.state}' state.")
                        self._delete_volume_now(v)

        def _tag_target(self, rid: str) -> dict[str, str]:
                if rid.startswith("vol-"):
                        return self.volume(rid).tags
                if rid.startswith("i-"):
                        return self.instance(rid).tags
                raise AwsError("InvalidID", f"The ID '{rid}' is not valid")

        def create_tags(self, resource_ids: list[str], tags: list[tuple[str, str]]) -> None:
                with self.lock:
                        targets = [self._tag_target(r) for r in resource_ids]   # all or nothing
                        for key, value in tags:
                                if key.startswith("aws:"):
                                        raise AwsError("InvalidParameterValue",
                                                       "Tag keys starting with 'aws:' are reserved for internal use")
                                if not key or len(key) > 128 or len(value) > 256:
                                        raise AwsError("InvalidParameterValue", f"Tag key or value is invalid: '{key}'")
                        for t in targets:
                                if len(set(t) | {k for k, _ in tags}) > MAX_TAGS:
                                        raise AwsError("TagLimitExceeded",
                                                       f"The maximum number of tags ({MAX_TAGS}) was exceeded")
                        for t in targets:
                                for key, value in tags:
                                        t[key] = value

        def delete_tags(self, resource_ids: list[str], tags: list[tuple[str, str | None]]) -> None:
                """A tag with a value is deleted only if the value matches; no tags at all
                deletes every tag."""
                with self.lock:
                        targets = [self._tag_target(r) for r in resource_ids]
                        for t in targets:
                                if not tags:
                                        t.clear()
                                for key, value in tags:
                                        if key in t and (value is None or t[key] == value):
                                                del t[key]

        def modify_delete_on_termination(self, iid: str, changes: list[tuple[str, bool]]) -> None:
                with self.lock:
                        self.instance(iid)
                        attached = {a.device: a for _, a in self.attachments_of(iid)}
                        for device, _ in changes:
                                if device not in attached:
                                        raise AwsError("InvalidInstanceAttributeValue",
                                                       f"No device is currently mapped at {device}")
                        for device, value in changes:
                                attached[device].delete_on_termination = value

        # -- control actions --

        def terminate_instance(self, iid: str) -> dict[str, Any]:
                with self.lock:
                        inst = self.instances.get(iid)
                        if inst is None:
                                raise ControlError(f"no instance {iid}", 404)
                        if not inst.running:
                                return {"instance_id": iid, "deleted": [], "detached": []}
                        inst.state = "terminated"
                        deleted, detached = [], []
                        for v, a in self.attachments_of(iid):
                                self._remove_device(inst, a)
                                self._drop_attachment(v, a)
                                if a.delete_on_termination:
                                        v.state = "deleted"
                                        self._delete_volume_now(v)
                                        deleted.append(v.id)
                                else:
                                        detached.append(v.id)
                        self.log("store", f"terminated {iid}: deleted {deleted}, detached {detached}")
                        return {"instance_id": iid, "deleted": deleted, "detached": detached}

        def set_events(self, iid: str, spec: dict[str, Any]) -> None:
                unknown = set(spec) - {"spot", "rebalance", "lifecycle_state", "spot_after_s"}
                if unknown:
                        raise ControlError(f"unknown event keys: {', '.join(sorted(unknown))}")
                with self.lock:
                        inst = self.instances.get(iid)
                        if inst is None:
                                raise ControlError(f"no instance {iid}", 404)
                        if "spot" in spec:
                                spot = spec["spot"]
                                if spot is not None:
                                        if not isinstance(spot, dict):
                                                raise ControlError("spot must be an object or null")
                                        spot = {"action": spot.get("action", "terminate"),
                                                "time": spot.get("time") or iso_s(utcnow() + dt.timedelta(seconds=120))}
                                inst.spot = spot
                                delay = spec.get("spot_after_s") or 0
                                inst.spot_visible_at = time.monotonic() + float(delay)
                        if "rebalance" in spec:
                                r = spec["rebalance"]
                                if r is not None:
                                        r = {"noticeTime": (r or {}).get("noticeTime") or iso_s(utcnow())}
                                inst.rebalance = r
                        if "lifecycle_state" in spec:
                                inst.lifecycle_state = spec["lifecycle_state"]

        def role_credential(self, inst: Instance) -> RoleCredential:
                """The instance's role credentials; new ones shortly before expiry."""
                with self.lock:
                        c = inst.credential
                        now = utcnow()
                        if c is None or (c.expiration - now).total_seconds() <= CREDENTIAL_REFRESH_S:
                                c = RoleCredential.issue(inst.id, self.config.credential_ttl_s)
                                inst.credential = c
                                self.credentials[c.access_key_id] = c
                        return c

        def forget_current_credentials(self) -> None:
                """After a TTL change the next IMDS fetch issues credentials with the new TTL."""
                with self.lock:
                        for inst in self.instances.values():
                                inst.credential = None

        def teardown_all(self) -> None:
                with self.lock:
                        for v in self.volumes.values():
                                for a in v.attachments:
                                        inst = self.instances.get(a.instance_id)
                                        if inst:
                                                try:
                                                        self._remove_device(inst, a)
                                                except OSError as e:
                                                        self.log("store", f"teardown of {v.id}: {e}")


# --------------------------------------------------------------------------
# SigV4
# --------------------------------------------------------------------------

class SigV4Verifier:
        """Checks AWS Signature Version 4 the way AWS does, from the request as received."""

        AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.+)$", re.DOTALL)

        def __init__(self, store: Store, region: str, service: str = "ec2"):
                self.store = store
                self.region = region
                self.service = service

        def verify(self, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]],
                   body: bytes) -> RoleCredential:
                hdrs: dict[str, list[str]] = {}
                for name, value in headers:
                        hdrs.setdefault(name.lower(), []).append(value)
                auth = (hdrs.get("authorization") or [None])[0]
                if auth is None:
                        raise AwsError("MissingAuthenticationToken",
                                       "Request is missing Authentication Token", 401)
                m = self.AUTH_RE.match(auth.strip())
                if not m:
                        raise AwsError("IncompleteSignature",
                                       "Authorization header requires the AWS4-HMAC-SHA256 algorithm", 400)
                fields = {}
                for part in m.group(1).split(","):
                        k, sep, v = part.strip().partition("=")
                        if sep:
                                fields[k] = v
                for k in ("Credential", "SignedHeaders", "Signature"):
                        if k not in fields:
                                raise AwsError("IncompleteSignature",
                                               f"Authorization header requires '{k}' parameter.", 400)
                scope = fields["Credential"].split("/")
                if len(scope) != 5 or scope[4] != "aws4_request":
                        raise AwsError("IncompleteSignature", "Credential is not a valid scope.", 400)
                akid, date, region, service, _ = scope
                signed = fields["SignedHeaders"].split(";")
                if "host" not in signed or "x-amz-date" not in signed:
                        raise AwsError("AuthFailure", "SignedHeaders must include host and x-amz-date", 401)
                amz_date = (hdrs.get("x-amz-date") or [""])[0].strip()
                try:
                        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
                except ValueError:
                        raise AwsError("AuthFailure", "X-Amz-Date is missing or malformed", 401) from None
                if abs((utcnow() - when).total_seconds()) > MAX_CLOCK_SKEW_S:
                        raise AwsError("RequestExpired", "Request has expired.", 400)

                cred = self.store.credentials.get(akid)
                if cred is None:
                        raise AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
                if region != self.region or service != self.service or date != amz_date[:8]:
                        raise AwsError("AuthFailure",
                                       f"Credential should be scoped to a valid region, service and date "
                                       f"(expected {amz_date[:8]}/{self.region}/{self.service}).", 401)

                expected = self.signature(cred.secret_access_key, method, raw_path, raw_query, hdrs,
                                          signed, body, amz_date, "/".join(scope[1:]))
                if not hmac.compare_digest(expected, fields["Signature"]):
                        raise AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401)

                token = (hdrs.get("x-amz-security-token") or [None])[0]
                if cred.token is not None:
                        if token is None or not hmac.compare_digest(token.strip(), cred.token):
                                raise AwsError("AuthFailure", "The security token included in the request is invalid.", 401)
                        if cred.expired(utcnow()):
                                raise AwsError("ExpiredToken", "The security token included in the request is expired", 400)
                elif token is not None:
                        raise AwsError("AuthFailure", "The security token included in the request is invalid.", 401)
                return cred

        def signature(self, secret: str, method: str, raw_path: str, raw_query: str,
                      hdrs: dict[str, list[str]], signed: list[str], body: bytes, amz_date: str,
                      scope: str) -> str:
                canonical = "\n".join([
                        method,
                        self.canonical_uri(raw_path),
                        self.canonical_query(raw_query),
                        "".join(f"{name}:{self.canonical_header_value(hdrs.get(name, []))}\n" for name in signed),
                        ";".join(signed),
                        hashlib.sha256(body).hexdigest(),
                ])
                to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                     hashlib.sha256(canonical.encode()).hexdigest()])
                date, region, service, term = scope.split("/")
                key = ("AWS4" + secret).encode()
                for part in (date, region, service, term):
                        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

        @staticmethod
        def canonical_uri(raw_path: str) -> str:
                # Non-S3 services encode each (already encoded) path segment once more.
                return urllib.parse.quote(raw_path or "/", safe="/~")

        @staticmethod
        def canonical_query(raw_query: str) -> str:
                pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
                enc = [(urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in pairs]
                return "&".join(f"{k}={v}" for k, v in sorted(enc))

        @staticmethod
        def canonical_header_value(values: list[str]) -> str:
                return ",".join(" ".join(v.strip().split()) for v in values)


# --------------------------------------------------------------------------
# XML rendering
# --------------------------------------------------------------------------

Node = tuple[str, Any]  # (name, str | int | bool | None | list[Node])


class Xml:
        """EC2's XML: pretty-printed with four spaces, empty elements self-closed."""

        @staticmethod
        def lines(name: str, value: Any, depth: int, out: list[str]) -> None:
                pad = "    " * depth
                if value is None or value == "" or (isinstance(value, list) and not value):
                        out.append(f"{pad}<{name}/>")
                elif isinstance(value, list):
                        out.append(f"{pad}<{name}>")
                        for child, child_value in value:
                                Xml.lines(child, child_value, depth + 1, out)
                        out.append(f"{pad}</{name}>")
                else:
                        text = xml_bool(value) if isinstance(value, bool) else str(value)
                        out.append(f"{pad}<{name}>{xml_escape(text)}</{name}>")

        @staticmethod
        def response(action: str, request_id: str, nodes: list[Node]) -> bytes:
                out = ['<?xml version="1.0" encoding="UTF-8"?>',
                       f'<{action}Response xmlns="{EC2_NS}">',
                       f"    <requestId>{request_id}</requestId>"]
                for name, value in nodes:
                        Xml.lines(name, value, 1, out)
                out.append(f"</{action}Response>")
                return ("\n".join(out) + "\n").encode()

        @staticmethod
        def error(code: str, message: str, request_id: str) -> bytes:
                return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                        f"<Response><Errors><Error><Code>{xml_escape(code)}</Code>"
                        f"<Message>{xml_escape(message)}</Message></Error></Errors>"
                        f"<RequestID>{request_id}</RequestID></Response>").encode()

        @staticmethod
        def tag_set(tags: dict[str, str]) -> list[Node]:
                # AWS omits tagSet altogether when there are no tags.
                if not tags:
                        return []
                return [("tagSet", [("item", [("key", k), ("value", v)]) for k, v in tags.items()])]

        @staticmethod
        def attachment(a: Attachment, status: str | None = None) -> list[Node]:
                return [("volumeId", a.volume_id), ("instanceId", a.instance_id), ("device", a.device),
                        ("status", status or a.status), ("attachTime", iso_ms(a.attach_time)),
                        ("deleteOnTermination", a.delete_on_termination)]

        @staticmethod
        def volume(v: Volume) -> list[Node]:
                nodes: list[Node] = [
                        ("volumeId", v.id), ("size", v.size_gib), ("snapshotId", v.snapshot_id),
                        ("availabilityZone", v.availability_zone), ("status", v.state),
                        ("createTime", iso_ms(v.create_time)),
                        ("attachmentSet", [("item", Xml.attachment(a)) for a in v.attachments]),
                ]
                nodes += Xml.tag_set(v.tags)
                nodes.append(("volumeType", v.volume_type))
                if v.iops is not None:
                        nodes.append(("iops", v.iops))
                nodes += [("encrypted", v.encrypted), ("multiAttachEnabled", v.multi_attach)]
                if v.throughput is not None:
                        nodes.append(("throughput", v.throughput))
                return nodes

        @staticmethod
        def instance(inst: Instance, store: Store) -> list[Node]:
                state_code = {"running": 16, "terminated": 48}[inst.state]
                mappings = []
                for v, a in sorted(store.attachments_of(inst.id), key=lambda va: va[1].attach_time):
                        mappings.append(("item", [("deviceName", a.device), ("ebs", [
                                ("volumeId", v.id), ("status", a.status), ("attachTime", iso_ms(a.attach_time)),
                                ("deleteOnTermination", a.delete_on_termination)])]))
                nodes: list[Node] = [
                        ("instanceId", inst.id), ("imageId", inst.image_id),
                        ("instanceState", [("code", state_code), ("name", inst.state)]),
                        ("privateDnsName", f"ip-{inst.private_ip.replace('.', '-')}.ec2.internal"),
                        ("amiLaunchIndex", 0), ("instanceType", inst.instance_type),
                        ("launchTime", iso_ms(inst.launch_time)),
                        ("placement", [("availabilityZone", inst.availability_zone), ("groupName", ""),
                                       ("tenancy", "default")]),
                        ("privateIpAddress", inst.private_ip),
                        ("architecture", "x86_64"), ("rootDeviceType", "ebs"), ("rootDeviceName", ROOT_DEVICE),
                        ("blockDeviceMapping", mappings),
                ]
                if inst.lifecycle == "spot":
                        nodes.append(("instanceLifecycle", "spot"))
                nodes += Xml.tag_set(inst.tags)
                nodes.append(("hypervisor", "xen"))
                return nodes


# --------------------------------------------------------------------------
# EC2 actions
# --------------------------------------------------------------------------

class Filters:
        """Filter.N.Name / Filter.N.Value.M: AND across filters, OR across values."""

        VOLUME: dict[str, Callable[[Volume], list[str]]] = {
                "availability-zone": lambda v: [v.availability_zone],
                "status": lambda v: [v.state],
                "volume-id": lambda v: [v.id],
                "size": lambda v: [str(v.size_gib)],
                "volume-type": lambda v: [v.volume_type],
                "snapshot-id": lambda v: [v.snapshot_id],
                "encrypted": lambda v: [xml_bool(v.encrypted)],
                "create-time": lambda v: [iso_ms(v.create_time)],
                "multi-attach-enabled": lambda v: [xml_bool(v.multi_attach)],
                "attachment.instance-id": lambda v: [a.instance_id for a in v.attachments],
                "attachment.device": lambda v: [a.device for a in v.attachments],
                "attachment.status": lambda v: [a.status for a in v.attachments],
                "attachment.attach-time": lambda v: [iso_ms(a.attach_time) for a in v.attachments],
                "attachment.delete-on-termination": lambda v: [xml_bool(a.delete_on_termination)
                                                               for a in v.attachments],
                "tag-key": lambda v: list(v.tags),
                "tag-value": lambda v: list(v.tags.values()),
        }
        INSTANCE: dict[str, Callable[[Instance], list[str]]] = {
                "instance-id": lambda i: [i.id],
                "availability-zone": lambda i: [i.availability_zone],
                "instance-state-name": lambda i: [i.state],
                "instance-type": lambda i: [i.instance_type],
                "instance-lifecycle": lambda i: [i.lifecycle] if i.lifecycle == "spot" else [],
                "tag-key": lambda i: list(i.tags),
                "tag-value": lambda i: list(i.tags.values()),
        }

        def __init__(self, params: dict[str, str], table: dict[str, Callable[[Any], list[str]]]):
                self.table = table
                self.filters: list[tuple[str, list[str]]] = []
                for n, group in enumerate(indexed_groups(params, "Filter"), 1):
                        name = group.get("Name")
                        if not name:
                                raise AwsError("MissingParameter", f"The request must contain the parameter Filter.{n}.Name")
                        if not name.startswith("tag:") and name not in table:
                                raise AwsError("InvalidParameterValue", f"The filter '{name}' is invalid")
                        values = [group[f"Value.{i}"] for i in sorted(int(k[6:]) for k in group if re.fullmatch(r"Value\.\d+", k))]
                        if not values:
                                raise AwsError("InvalidParameterValue", f"The filter '{name}' has no values")
                        self.filters.append((name, values))

        def values_of(self, name: str, obj: Any) -> list[str]:
                if name.startswith("tag:"):
                        key = name[4:]
                        return [obj.tags[key]] if key in obj.tags else []
                return self.table[name](obj)

        def match(self, obj: Any) -> bool:
                return all(any(wildcard_match(p, have) for p in patterns for have in self.values_of(name, obj))
                           for name, patterns in self.filters)


class Paginator:
        """MaxResults / NextToken. The token is opaque (base64 of the last id seen)."""

        def __init__(self, params: dict[str, str], action: str, lo: int, hi: int, cap: int | None,
                     with_ids: bool):
                self.action = action
                self.limit: int | None = None
                self.after: str | None = None
                raw = params.get("MaxResults")
                if raw is not None:
                        if with_ids:
                                raise AwsError("InvalidParameterCombination",
                                               "The parameter volumeSet cannot be used with the parameter maxResults")
                        try:
                                self.limit = int(raw)
                        except ValueError:
                                raise AwsError("InvalidParameterValue",
                                               f"Invalid value '{raw}' for maxResults") from None
                        if not lo <= self.limit <= hi:
                                raise AwsError("InvalidParameterValue",
                                               f"Value ( {raw} ) for parameter maxResults is invalid. "
                                               f"Expecting a value between {lo} and {hi}.")
                if cap is not None and not with_ids:
                        self.limit = min(self.limit or cap, cap)
                token = params.get("NextToken")
                if token:
                        try:
                                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                                if decoded["a"] != action:
                                        raise ValueError
                                self.after = decoded["k"]
                        except (ValueError, KeyError, TypeError):
                                raise AwsError("InvalidPaginationToken",
                                               "The specified pagination token is not valid or is expired.") from None

        def page(self, items: list[Any], key: Callable[[Any], str]) -> tuple[list[Any], str | None]:
                items = sorted(items, key=key)
                if self.after is not None:
                        items = [i for i in items if key(i) > self.after]
                if self.limit is None or len(items) <= self.limit:
                        return items, None
                page = items[:self.limit]
                token = base64.urlsafe_b64encode(json.dumps({"a": self.action, "k": key(page[-1])}).encode())
                return page, token.decode()


class Ec2Api:
        """The EC2 actions: parameters in, (action, XML nodes) out. AwsError for errors."""

        def __init__(self, store: Store):
                self.store = store
                self.actions: dict[str, Callable[[dict[str, str]], list[Node]]] = {
                        "DescribeVolumes": self.describe_volumes,
                        "AttachVolume": self.attach_volume,
                        "DetachVolume": self.detach_volume,
                        "CreateTags": self.create_tags,
                        "DeleteTags": self.delete_tags,
                        "DeleteVolume": self.delete_volume,
                        "ModifyInstanceAttribute": self.modify_instance_attribute,
                        "DescribeInstances": self.describe_instances,
                }
                self.read_only = {"DescribeVolumes", "DescribeInstances"}

        @staticmethod
        def required(params: dict[str, str], name: str) -> str:
                v = params.get(name)
                if v is None or v == "":
                        raise AwsError("MissingParameter", f"The request must contain the parameter {name}")
                return v

        def call(self, action: str, params: dict[str, str]) -> list[Node]:
                fn = self.actions.get(action)
                if fn is None:
                        raise AwsError("InvalidAction", f"The action {action} is not valid for this web service.")
                if not params.get("Version"):
                        raise AwsError("MissingParameter", "The request must contain the parameter Version")
                if params.get("DryRun", "false").lower() == "true":
                        raise AwsError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
                return fn(params)

        def describe_volumes(self, params: dict[str, str]) -> list[Node]:
                ids = indexed(params, "VolumeId")
                filters = Filters(params, Filters.VOLUME)
                with self.store.lock:
                        pager = Paginator(params, "DescribeVolumes", 5, 1000,
                                          self.store.config.max_results_cap, bool(ids))
                        if ids:
                                missing = [i for i in dict.fromkeys(ids)
                                           if i not in self.store.volumes or self.store.volumes[i].state == "deleted"]
                                if len(missing) == 1:
                                        raise AwsError("InvalidVolume.NotFound", f"The volume '{missing[0]}' does not exist.")
                                if missing:
                                        raise AwsError("InvalidVolume.NotFound",
                                                       f"The volumes '{', '.join(missing)}' do not exist.")
                                candidates = [self.store.volumes[i] for i in dict.fromkeys(ids)]
                        else:
                                candidates = [v for v in self.store.volumes.values() if v.state != "deleted"]
                        page, token = pager.page([v for v in candidates if filters.match(v)], key=lambda v: v.id)
                        nodes: list[Node] = [("volumeSet", [("item", Xml.volume(v)) for v in page])]
                        if token:
                                nodes.append(("nextToken", token))
                        return nodes

        def attach_volume(self, params: dict[str, str]) -> list[Node]:
                vid = self.required(params, "VolumeId")
                iid = self.required(params, "InstanceId")
                device = self.required(params, "Device")
                a = self.store.attach_volume(vid, iid, device)
                return [(n, v) for n, v in Xml.attachment(a) if n != "deleteOnTermination"]

        def detach_volume(self, params: dict[str, str]) -> list[Node]:
                vid = self.required(params, "VolumeId")
                force = parse_bool("Force", params.get("Force", "false"))
                a = self.store.detach_volume(vid, params.get("InstanceId") or None, params.get("Device") or None, force)
                return [(n, v) for n, v in Xml.attachment(a) if n != "deleteOnTermination"]

        def create_tags(self, params: dict[str, str]) -> list[Node]:
                ids = indexed(params, "ResourceId")
                if not ids:
                        raise AwsError("MissingParameter", "The request must contain the parameter resourceIdSet")
                tags = []
                for n, t in enumerate(indexed_groups(params, "Tag"), 1):
                        if "Key" not in t:
                                raise AwsError("MissingParameter", f"The request must contain the parameter Tag.{n}.Key")
                        tags.append((t["Key"], t.get("Value", "")))
                if not tags:
                        raise AwsError("MissingParameter", "The request must contain the parameter tagSet")
                self.store.create_tags(ids, tags)
                return [("return", True)]

        def delete_tags(self, params: dict[str, str]) -> list[Node]:
                ids = indexed(params, "ResourceId")
                if not ids:
                        raise AwsError("MissingParameter", "The request must contain the parameter resourceIdSet")
                tags = []
                for n, t in enumerate(indexed_groups(params, "Tag"), 1):
                        if "Key" not in t:
                                raise AwsError("MissingParameter", f"The request must contain the parameter Tag.{n}.Key")
                        tags.append((t["Key"], t.get("Value")))
                self.store.delete_tags(ids, tags)
                return [("return", True)]

        def delete_volume(self, params: dict[str, str]) -> list[Node]:
                self.store.delete_volume(self.required(params, "VolumeId"))
                return [("return", True)]

        def modify_instance_attribute(self, params: dict[str, str]) -> list[Node]:
                iid = self.required(params, "InstanceId")
                changes = []
                for n, m in enumerate(indexed_groups(params, "BlockDeviceMapping"), 1):
                        device = m.get("DeviceName")
                        if not device:
                                raise AwsError("MissingParameter",
                                               f"The request must contain the parameter BlockDeviceMapping.{n}.DeviceName")
                        if "Ebs.DeleteOnTermination" not in m:
                                raise AwsError("MissingParameter",
                                               f"The request must contain the parameter "
                                               f"BlockDeviceMapping.{n}.Ebs.DeleteOnTermination")
                        changes.append((device, parse_bool("DeleteOnTermination", m["Ebs.DeleteOnTermination"])))
                if not changes:
                        raise AwsError("InvalidParameterCombination",
                                       "No attribute specified (only BlockDeviceMapping is supported by this fake)")
                self.store.modify_delete_on_termination(iid, changes)
                return [("return", True)]

        def describe_instances(self, params: dict[str, str]) -> list[Node]:
                ids = indexed(params, "InstanceId")
                filters = Filters(params, Filters.INSTANCE)
                with self.store.lock:
                        pager = Paginator(params, "DescribeInstances", 5, 1000, None, bool(ids))
                        if ids:
                                missing = [i for i in dict.fromkeys(ids) if i not in self.store.instances]
                                if missing:
                                        raise AwsError("InvalidInstanceID.NotFound",
                                                       f"The instance ID{'s' if len(missing) > 1 else ''} "
                                                       f"'{', '.join(missing)}' does not exist")
                                candidates = [self.store.instances[i] for i in dict.fromkeys(ids)]
                        else:
                                candidates = list(self.store.instances.values())
                        page, token = pager.page([i for i in candidates if filters.match(i)], key=lambda i: i.id)
                        reservations = [("item", [
                                ("reservationId", "r-" + hashlib.sha256(i.id.encode()).hexdigest()[:17]),
                                ("ownerId", ACCOUNT_ID), ("groupSet", []),
                                ("instancesSet", [("item", Xml.instance(i, self.store))]),
                        ]) for i in page]
                        nodes: list[Node] = [("reservationSet", reservations)]
                        if token:
                                nodes.append(("nextToken", token))
                        return nodes


# --------------------------------------------------------------------------
# IMDS
# --------------------------------------------------------------------------

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


@dataclass
class Reply:
        status: int
        body: bytes
        content_type: str = "text/plain"
        headers: dict[str, str] = field(default_factory=dict)


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

        def __init__(self, store: Store, config: Config):
                self.store = store
                self.config = config
                self._lock = threading.Lock()
                self._tokens: dict[str, tuple[str, float]] = {}     # token -> (instance id, expiry)

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


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class FakeHTTPServer(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256        # benchmarks open many connections at once

        def __init__(self, address, handler, app: "FakeAws"):
                self.app = app
                super().__init__(address, handler)

        def handle_error(self, request: Any, client_address: Any) -> None:
                """A bug in the fake: into the log, and onto stderr (where the test fixture
                looks for tracebacks and fails the test)."""
                self.app.log("error", traceback.format_exc())
                super().handle_error(request, client_address)


class BaseHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 300           # idle keep-alive connections go away eventually
        server_name = "fake"
        service = "?"

        @property
        def app(self) -> "FakeAws":
                return self.server.app   # type: ignore[attr-defined]

        def version_string(self) -> str:
                return self.server_name

        def log_message(self, fmt: str, *args: Any) -> None:
                self.app.log(self.service, "%s %s" % (self.address_string(), fmt % args))

        def read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                        chunks = []
                        while True:
                                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                                if size == 0:
                                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                                pass
                                        return b"".join(chunks)
                                chunks.append(self.rfile.read(size))
                                self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length > 0 else b""

        def send(self, reply: Reply, truncate: bool = False) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for k, v in reply.headers.items():
                        self.send_header(k, v)
                if truncate:
                        self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                        self.wfile.write(reply.body[:len(reply.body) // 2] if truncate else reply.body)
                if truncate:
                        self.close_connection = True

        def drop(self) -> None:
                """Closes the connection without an answer."""
                self.close_connection = True
                try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                        pass

        def serve(self, method: str) -> None:
                try:
                        self.dispatch(method)
                except (ConnectionError, TimeoutError) as e:
                        # The client gave up (its timeout during injected latency, say): normal.
                        self.close_connection = True
                        self.app.log(self.service, f"{method} {self.path}: client went away ({e!r})")

        def do_GET(self) -> None:
                self.serve("GET")

        def do_HEAD(self) -> None:
                self.serve("HEAD")

        def do_POST(self) -> None:
                self.serve("POST")

        def do_PUT(self) -> None:
                self.serve("PUT")

        def do_DELETE(self) -> None:
                self.serve("DELETE")

        def do_PATCH(self) -> None:
                self.serve("PATCH")

        def dispatch(self, method: str) -> None:
                raise NotImplementedError


class ImdsHandler(BaseHandler):
        server_name = "EC2ws"
        service = "imds"

        def dispatch(self, method: str) -> None:
                app = self.app
                started = time.monotonic()
                path = urllib.parse.urlsplit(self.path).path
                iid, rest = app.imds.resolve(path)
                entry = {"service": "imds", "action": rest, "method": method, "instance": iid,
                         "status": 0, "t": started}
                self.read_body()
                try:
                        mode = app.config.imds_mode
                        if mode == "down":
                                return self.drop()
                        if mode == "hang":
                                while app.config.imds_mode == "hang" and not app.stopping.is_set():
                                        time.sleep(0.05)
                                return self.drop()
                        if app.config.imds_latency_ms:
                                time.sleep(app.config.imds_latency_ms / 1000)
                        if mode == "500":
                                reply = imds_error(500)
                                entry["status"] = 500
                                return self.send(reply)
                        fault = app.faults.take("imds", rest)
                        if fault:
                                entry["fault"] = fault.kind
                                reply = self.faulted(fault, method, iid, rest)
                                if reply is None:
                                        return self.drop()
                        else:
                                reply = app.imds.handle(method, iid, rest, self.headers)
                        entry["status"] = reply.status
                        self.send(reply, truncate=fault is not None and fault.base_kind == "truncate")
                finally:
                        app.requests.add(entry)

        def faulted(self, fault: Fault, method: str, iid: str | None, path: str) -> Reply | None:
                kind = fault.base_kind
                if kind == "latency":
                        time.sleep(fault.latency_ms / 1000)
                        return self.app.imds.handle(method, iid, path, self.headers)
                if kind == "throttle":
                        return imds_error(429)
                if kind == "5xx":
                        return imds_error(fault.status or 500)
                if kind == "drop":
                        return None
                reply = self.app.imds.handle(method, iid, path, self.headers)
                if kind == "malformed" and reply.status == 200:
                        reply.body = b'{\n  "Code" : "Succ\x00<html>' + reply.body[: len(reply.body) // 3]
                return reply


class Ec2Handler(BaseHandler):
        server_name = "AmazonEC2"
        service = "ec2"

        def dispatch(self, method: str) -> None:
                split = urllib.parse.urlsplit(self.path)
                body = self.read_body()
                if split.path.startswith("/_fake/") or split.path == "/_fake":
                        return ControlApi(self.app).serve(self, method, split, body)
                self.serve_ec2(method, split, body)

        def serve_ec2(self, method: str, split: urllib.parse.SplitResult, body: bytes) -> None:
                app = self.app
                started = time.monotonic()
                request_id = str(uuid.uuid4())
                entry: dict[str, Any] = {"service": "ec2", "action": "", "method": method, "instance": None,
                                         "status": 0, "t": started}
                try:
                        try:
                                params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
                                if method == "POST":
                                        params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                        except UnicodeDecodeError:
                                params = {}
                        action = params.get("Action", "")
                        entry["action"] = action
                        # Logged even when the signature turns out to be bad.
                        akid = re.search(r"Credential=([^/,\s]+)/", self.headers.get("Authorization", ""))
                        entry["instance"] = akid.group(1) if akid else None
                        if app.config.ec2_latency_ms:
                                time.sleep(app.config.ec2_latency_ms / 1000)
                        reply, truncate = self.answer(method, split, body, params, action, request_id, entry)
                        if reply is None:
                                return self.drop()
                        entry["status"] = reply.status
                        self.send(reply, truncate=truncate)
                finally:
                        app.requests.add(entry)
                        app.log("ec2", f"{entry['action'] or '-'} {entry['instance']} -> {entry['status']}"
                                       + (f" (fault {entry['fault']})" if "fault" in entry else ""))

        def answer(self, method: str, split: urllib.parse.SplitResult, body: bytes, params: dict[str, str],
                   action: str, request_id: str, entry: dict[str, Any]) -> tuple[Reply | None, bool]:
                """The reply (None: drop the connection) and whether to truncate it."""
                app = self.app
                try:
                        if method not in ("GET", "POST"):
                                raise AwsError("InvalidAction", f"The HTTP method {method} is not supported.")
                        app.verifier.verify(method, split.path or "/", split.query, self.headers.items(), body)
                        if not action:
                                raise AwsError("MissingAction", "The request must contain the parameter Action")
                        fault = app.faults.take("ec2", action)
                        if fault:
                                entry["fault"] = fault.kind
                                early = self.fault_before(fault, action, params, request_id)
                                if early is not False:
                                        return early
                        nodes = app.ec2.call(action, params)
                        reply = Reply(200, Xml.response(action, request_id, nodes), "text/xml;charset=UTF-8")
                        if fault and fault.after_success:
                                return self.fault_after(fault, reply, request_id)
                        return reply, False
                except AwsError as e:
                        return self.error_reply(e, request_id), False

        def fault_before(self, fault: Fault, action: str, params: dict[str, str],
                         request_id: str) -> tuple[Reply | None, bool] | bool:
                """Applies a fault that strikes before the action; False: go on with the action."""
                kind = fault.kind
                if kind == "latency":
                        time.sleep(fault.latency_ms / 1000)
                        return False
                if kind == "throttle":
                        return self.error_reply(AwsError("RequestLimitExceeded", "Request limit exceeded.", 503),
                                                request_id), False
                if kind == "5xx":
                        return self.error_reply(self.server_error(fault.status), request_id), False
                if kind == "drop":
                        return None, False
                if kind in ("truncate", "malformed"):
                        # What the answer would have looked like, without doing the action
                        # (read-only actions are answered for real).
                        if action in self.app.ec2.read_only:
                                try:
                                        body = Xml.response(action, request_id, self.app.ec2.call(action, params))
                                except AwsError as e:
                                        return self.error_reply(e, request_id), False
                        else:
                                body = Xml.response(action, request_id, [("return", True)])
                        if kind == "truncate":
                                return Reply(200, body, "text/xml;charset=UTF-8"), True
                        broken = body[: len(body) * 2 // 3] + b"<<not xml&\x00>\n"
                        return Reply(200, broken, "text/xml;charset=UTF-8"), False
                return False    # *_after_success

        def fault_after(self, fault: Fault, reply: Reply, request_id: str) -> tuple[Reply | None, bool]:
                kind = fault.base_kind
                if kind == "drop":
                        return None, False
                if kind == "truncate":
                        return reply, True
                return self.error_reply(self.server_error(fault.status), request_id), False

        @staticmethod
        def server_error(status: int | None) -> AwsError:
                if status == 503:
                        return AwsError("Server.Unavailable", "The server is overloaded and can't handle the request.", 503)
                return AwsError("InternalError", "An internal error has occurred", status or 500)

        @staticmethod
        def error_reply(e: AwsError, request_id: str) -> Reply:
                return Reply(e.status, Xml.error(e.code, e.message, request_id), "text/xml;charset=UTF-8")


class ControlApi:
        """/_fake/...: JSON in, JSON out, no signature."""

        def __init__(self, app: "FakeAws"):
                self.app = app

        def serve(self, h: BaseHandler, method: str, split: urllib.parse.SplitResult, body: bytes) -> None:
                try:
                        payload = json.loads(body) if body.strip() else {}
                        if not isinstance(payload, dict) and payload is not None:
                                raise ControlError("the body must be a JSON object")
                        status, result = self.route(method, split.path.rstrip("/"), payload or {})
                except ControlError as e:
                        status, result = e.status, {"error": str(e)}
                except json.JSONDecodeError as e:
                        status, result = 400, {"error": f"bad JSON: {e}"}
                except AwsError as e:
                        status, result = 400, {"error": e.message, "code": e.code}
                self.app.log("control", f"{method} {split.path} -> {status}")
                h.send(Reply(status, (json.dumps(result, indent=1) + "\n").encode(), "application/json"))

        def route(self, method: str, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
                app, store = self.app, self.app.store
                parts = path.split("/")[2:]     # after /_fake
                match (method, parts):
                        case ("GET", ["health"]):
                                return 200, {"ok": True}
                        case ("POST", ["instances"]):
                                inst, buffer_id = store.create_instance(payload)
                                result = inst.as_json(app.imds_port)
                                if buffer_id:
                                        result["buffer_volume_id"] = buffer_id
                                return 200, result
                        case ("GET", ["instances"]):
                                with store.lock:
                                        return 200, [i.as_json(app.imds_port) for i in store.instances.values()]
                        case ("GET", ["instances", iid]):
                                with store.lock:
                                        if iid not in store.instances:
                                                raise ControlError(f"no instance {iid}", 404)
                                        return 200, store.instances[iid].as_json(app.imds_port)
                        case ("POST", ["instances", iid, "terminate"]):
                                return 200, store.terminate_instance(iid)
                        case ("POST", ["instances", iid, "events"]):
                                store.set_events(iid, payload)
                                with store.lock:
                                        return 200, store.instances[iid].as_json(app.imds_port)["events"]
                        case ("POST", ["volumes"]):
                                return 200, {"volume_id": self.create_volume(payload).id}
                        case ("GET", ["volumes"]):
                                with store.lock:
                                        hosts = {i.id: i.host for i in store.instances.values()}
                                        return 200, [v.as_json(hosts) for v in store.volumes.values()]
                        case ("GET", ["volumes", vid]):
                                with store.lock:
                                        if vid not in store.volumes:
                                                raise ControlError(f"no volume {vid}", 404)
                                        hosts = {i.id: i.host for i in store.instances.values()}
                                        return 200, store.volumes[vid].as_json(hosts)
                        case ("POST", ["faults"]):
                                return 200, app.faults.add(payload).as_json()
                        case ("GET", ["faults"]):
                                return 200, app.faults.list()
                        case ("POST", ["faults", "reset"]):
                                app.faults.reset()
                                return 200, {"ok": True}
                        case ("POST", ["config"]):
                                app.update_config(payload)
                                return 200, app.config.as_json()
                        case ("GET", ["config"]):
                                return 200, app.config.as_json()
                        case ("GET", ["requests"]):
                                return 200, app.requests.list()
                        case ("POST", ["requests", "reset"]):
                                app.requests.reset()
                                return 200, {"ok": True}
                raise ControlError(f"no such control endpoint: {method} {path}", 404)

        def create_volume(self, p: dict[str, Any]) -> Volume:
                known = {"availability_zone", "size_gib", "image", "tags", "multi_attach", "volume_type",
                         "state", "volume_id", "create_time"}
                unknown = set(p) - known
                if unknown:
                        raise ControlError(f"unknown volume keys: {', '.join(sorted(unknown))}")
                size = p.get("size_gib")
                if size is not None and (not isinstance(size, int) or size < 1):
                        raise ControlError("size_gib must be a positive integer")
                tags = p.get("tags") or {}
                if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
                        raise ControlError("tags must be an object of strings")
                return self.app.store.create_volume(
                        availability_zone=p.get("availability_zone") or f"{self.app.region}a",
                        size_gib=size, image=p.get("image"), tags=tags,
                        multi_attach=bool(p.get("multi_attach", False)),
                        volume_type=p.get("volume_type", "gp3"), state=p.get("state", "available"),
                        volume_id=p.get("volume_id"), create_time=self.parse_time("create_time", p.get("create_time")))

        @staticmethod
        def parse_time(key: str, value: Any) -> dt.datetime | None:
                """An ISO 8601 time with a zone ("2026-01-02T03:04:05Z"), for back-dating."""
                if value is None:
                        return None
                try:
                        t = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
                except ValueError:
                        t = None
                if t is None or t.tzinfo is None:
                        raise ControlError(f"{key} must be an ISO 8601 time with a zone, like 2026-01-02T03:04:05Z")
                return t.astimezone(dt.timezone.utc)


# --------------------------------------------------------------------------
# the application
# --------------------------------------------------------------------------

class FakeAws:
        def __init__(self, state_dir: Path, region: str):
                self.state_dir = state_dir
                self.region = region
                state_dir.mkdir(parents=True, exist_ok=True)
                self.log = Logger(state_dir / "fakeaws.log")
                self.stopping = threading.Event()
                self.config = Config()
                self.faults = FaultQueue()
                self.requests = RequestLog()
                self.attacher = Attacher(self.log)
                self.store = Store(state_dir, region, self.config, self.attacher, self.log, self.stopping)
                self.verifier = SigV4Verifier(self.store, region)
                self.ec2 = Ec2Api(self.store)
                self.imds = ImdsService(self.store, self.config)
                self.imds_port = 0
                self._imds_server: FakeHTTPServer | None = None
                self._ec2_server: FakeHTTPServer | None = None
                self._imds_lock = threading.Lock()

        def _serve(self, server: FakeHTTPServer, name: str) -> None:
                threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                 name=name, daemon=True).start()

        def open_imds(self) -> None:
                with self._imds_lock:
                        if self._imds_server is None:
                                self._imds_server = FakeHTTPServer(("127.0.0.1", self.imds_port), ImdsHandler, self)
                                self.imds_port = self._imds_server.server_address[1]
                                self._serve(self._imds_server, "imds")
                                self.log("imds", f"listening on {self.imds_port}")

        def close_imds(self) -> None:
                with self._imds_lock:
                        if self._imds_server is not None:
                                self._imds_server.shutdown()
                                self._imds_server.server_close()
                                self._imds_server = None
                                self.log("imds", "listener closed")

        def start(self) -> None:
                self.open_imds()
                self._ec2_server = FakeHTTPServer(("127.0.0.1", 0), Ec2Handler, self)
                self._serve(self._ec2_server, "ec2")
                self.log("ec2", f"listening on {self._ec2_server.server_address[1]}")

        @property
        def ec2_port(self) -> int:
                assert self._ec2_server
                return self._ec2_server.server_address[1]

        def update_config(self, changes: dict[str, Any]) -> None:
                self.config.update(changes)
                if "credential_ttl_s" in changes:
                        self.store.forget_current_credentials()
                if "imds_mode" in changes:
                        if self.config.imds_mode == "down":
                                self.close_imds()
                        else:
                                self.open_imds()

        def stop(self) -> None:
                self.stopping.set()
                self.close_imds()
                if self._ec2_server:
                        self._ec2_server.shutdown()
                        self._ec2_server.server_close()
                self.store.teardown_all()
                self.attacher.teardown_all()
                self.log("main", "stopped")
                self.log.close()


def write_ready_file(path: Path, info: dict[str, Any]) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info) + "\n")
        os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
        ap = argparse.ArgumentParser(description="Fake IMDS + EC2 for lifeboat's tests")
        ap.add_argument("--state-dir", required=True, type=Path)
        ap.add_argument("--region", default="us-east-1")
        ap.add_argument("--ready-file", type=Path)
        ap.add_argument("--exit-with-parent", action="store_true",
                        help="stop (cleaning up) when the process that started us goes away")
        args = ap.parse_args(argv)
        parent = os.getppid()

        stop_requested = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
                stop_requested.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        app = FakeAws(args.state_dir.resolve(), args.region)
        try:
                app.start()
                info = {"imds_port": app.imds_port, "ec2_port": app.ec2_port, "pid": os.getpid()}
                app.log("main", f"ready: {info}")
                if args.ready_file:
                        write_ready_file(args.ready_file, info)
                # Poll rather than block: the handler only sets a flag.
                while not stop_requested.is_set():
                        if args.exit_with_parent and os.getppid() != parent:
                                app.log("main", f"parent {parent} is gone")
                                break
                        time.sleep(0.1)
        finally:
                app.stop()
        return 0


if __name__ == "__main__":
        sys.exit(main())
