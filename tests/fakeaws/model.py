# SPDX-License-Identifier: MIT
"""What EC2 knows: volumes, their attachments, instances and their role credentials,
each with the JSON the control API shows of it. The rules that change them are in
store.py."""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import iso_ms, utcnow

if TYPE_CHECKING:
        from .devices import Host


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
        provisioned_iops: int | None = None         # CreateVolume's Iops
        provisioned_throughput: int | None = None   # CreateVolume's Throughput

        @property
        def iops(self) -> int | None:
                if self.provisioned_iops is not None:
                        return self.provisioned_iops
                if self.volume_type == "gp3":
                        return 3000
                if self.volume_type == "gp2":
                        return max(100, min(16000, 3 * self.size_gib))
                if self.volume_type in ("io1", "io2"):
                        return 100 * self.size_gib
                return None

        @property
        def throughput(self) -> int | None:
                if self.provisioned_throughput is not None:
                        return self.provisioned_throughput
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
                        "snapshot_id": self.snapshot_id,
                        "iops": self.iops,
                        "throughput": self.throughput,
                        "encrypted": self.encrypted,
                        "root_of": self.root_of,
                        "attachments": [a.as_json(hosts.get(a.instance_id)) for a in self.attachments],
                }


@dataclass(eq=False)
class Snapshot:
        """An EBS snapshot: pending (with a progress) until completed_at, then completed, or
        error when it was made to fail. Its content is a copy of the volume's image taken when
        it was created (EBS snapshots are point-in-time)."""
        id: str
        volume_id: str
        volume_size: int
        start_time: dt.datetime
        started: float                  # time.monotonic() at creation
        completes: float                # time.monotonic() when it leaves pending
        image: str | None               # the copied content; None for a root volume's
        description: str = ""
        encrypted: bool = False
        tags: dict[str, str] = field(default_factory=dict)
        fails: bool = False             # ends in "error" instead of "completed"
        state: str = "pending"          # pending | completed | error | deleted
        delete_requested: bool = False  # deleted while pending: goes when it completes

        def progress(self, now: float) -> str:
                if self.state == "pending":
                        span = max(self.completes - self.started, 1e-3)
                        return f"{min(99, int(100 * (now - self.started) / span))}%"
                return "100%" if self.state == "completed" else "0%"

        def as_json(self, now: float) -> dict[str, Any]:
                return {
                        "snapshot_id": self.id,
                        "volume_id": self.volume_id,
                        "volume_size": self.volume_size,
                        "state": self.state,
                        "progress": self.progress(now),
                        "start_time": iso_ms(self.start_time),
                        "description": self.description,
                        "encrypted": self.encrypted,
                        "tags": dict(self.tags),
                        "image": self.image,
                        "delete_requested": self.delete_requested,
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
        metadata_tags: bool = False     # instance metadata tags: meta-data/tags/instance/ in IMDS

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
                        "metadata_tags": self.metadata_tags,
                }
