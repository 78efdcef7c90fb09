# SPDX-License-Identifier: MIT
"""EC2's state and its rules: creating volumes and instances, attaching and detaching
(asynchronously, like EC2: attaching -> attached, detaching -> busy while the OS holds the
device, mounted in any mount namespace or open exclusively -> gone), snapshots (pending ->
completed, their content copied when taken) and volumes made from them (creating ->
available, ClientToken idempotency), tags, termination, spot and rebalance events, role
credentials."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .base import (GIB, ROOT_DEVICE, ROOT_SIZE_GIB, SECTOR, STATIC_ACCESS_KEY, STATIC_SECRET_KEY, AwsError,
                   ControlError, Logger, iso_s, new_id, utcnow)
from .config import Config
from .devices import Attacher, Host, device_slot
from .model import Attachment, Instance, RoleCredential, Snapshot, Volume

MAX_TAGS = 50
VOLUME_TYPES = ("standard", "io1", "io2", "gp2", "sc1", "st1", "gp3")
CREDENTIAL_REFRESH_S = 300       # IMDS hands out new role credentials this long before expiry


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
                self.snapshots: dict[str, Snapshot] = {}
                # CreateVolume's ClientToken: (token, zone) -> (the request's parameters, volume id)
                self.client_tokens: dict[tuple[str, str], tuple[tuple, str]] = {}
                self.instances: dict[str, Instance] = {}
                self.first_instance: str | None = None
                self.credentials: dict[str, RoleCredential] = {
                        STATIC_ACCESS_KEY: RoleCredential(STATIC_ACCESS_KEY, STATIC_SECRET_KEY, None, None, utcnow()),
                }
                (state_dir / "volumes").mkdir(parents=True, exist_ok=True)
                (state_dir / "snapshots").mkdir(parents=True, exist_ok=True)
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
                         "device_style", "attachment_slots", "buffer", "tags", "metadata_tags"}
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
                                private_ip=f"10.0.{n // 250}.{n % 250 + 4}", tags=dict(spec.get("tags") or {}),
                                metadata_tags=bool(spec.get("metadata_tags", False)))
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
                        self._later(f"attach-{vid}", self.config.attach_delay_ms, 0.1,
                                    lambda: self._complete_attach(inst, v, a))
                        return dataclasses.replace(a)

        def _complete_attach(self, inst: Instance, v: Volume, a: Attachment) -> bool:
                if a not in v.attachments or a.status != "attaching":
                        return True             # detached or terminated meanwhile
                if v.id in self.config.stuck_attach:
                        return False
                self._make_device(inst, v, a)
                return True

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
                        self._later(f"detach-{vid}", self.config.detach_delay_ms, 0.2,
                                    lambda: self._complete_detach(inst, v, a))
                        return dataclasses.replace(a)

        def _complete_detach(self, inst: Instance, v: Volume, a: Attachment) -> bool:
                if a not in v.attachments:
                        return True             # the instance was terminated meanwhile
                if a.rdev is not None and not a.force and Attacher.in_use(a.rdev, a.loop):
                        # Like AWS: a volume the OS still holds (mounted in any mount namespace,
                        # or open) does not go away until released.
                        if a.status != "busy":
                                self.log("store", f"{v.id} is in use on {inst.id}: busy")
                        a.status = "busy"
                        return False
                self._remove_device(inst, a)
                self._drop_attachment(v, a)
                self.log("store", f"{v.id} detached from {inst.id}")
                return True

        def _later(self, name: str, delay_ms: int, interval: float, step: Callable[[], bool]) -> None:
                """How an attach or detach finishes by itself: after delay_ms, step() under the
                lock every interval seconds until it returns True (done) or the fake stops."""
                def run() -> None:
                        time.sleep(delay_ms / 1000)
                        while not self.stopping.is_set():
                                with self.lock:
                                        if step():
                                                return
                                time.sleep(interval)
                threading.Thread(target=run, name=name, daemon=True).start()

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
                if rid.startswith("snap-"):
                        return self.snapshot(rid).tags
                if rid.startswith("i-"):
                        return self.instance(rid).tags
                raise AwsError("InvalidID", f"The ID '{rid}' is not valid")

        @staticmethod
        def check_tags(tags: list[tuple[str, str]], existing: dict[str, str] | None = None) -> None:
                for key, value in tags:
                        if key.startswith("aws:"):
                                raise AwsError("InvalidParameterValue",
                                               "Tag keys starting with 'aws:' are reserved for internal use")
                        if not key or len(key) > 128 or len(value) > 256:
                                raise AwsError("InvalidParameterValue", f"Tag key or value is invalid: '{key}'")
                if len(set(existing or {}) | {k for k, _ in tags}) > MAX_TAGS:
                        raise AwsError("TagLimitExceeded", f"The maximum number of tags ({MAX_TAGS}) was exceeded")

        def create_tags(self, resource_ids: list[str], tags: list[tuple[str, str]]) -> None:
                with self.lock:
                        targets = [self._tag_target(r) for r in resource_ids]   # all or nothing
                        self.check_tags(tags)
                        for t in targets:
                                self.check_tags(tags, t)
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

        # -- snapshots --

        def _settle(self, x: Snapshot) -> None:
                """A pending snapshot whose time has come completes (or fails); one deleted while
                pending goes now (EC2: "the snapshot must complete before the deletion takes
                effect")."""
                if x.state == "pending" and time.monotonic() >= x.completes:
                        x.state = "error" if x.fails else "completed"
                        self.log("store", f"snapshot {x.id} of {x.volume_id}: {x.state}")
                        if x.delete_requested:
                                self._delete_snapshot_now(x)

        def reschedule_snapshots(self) -> None:
                """A new snapshot_delay_ms applies to the pending snapshots too (counted from when
                each was taken), so that a test can hold snapshots pending, then let them go."""
                with self.lock:
                        for x in self.snapshots.values():
                                if x.state == "pending":
                                        x.completes = x.started + self.config.snapshot_delay_ms / 1000
                                        self._settle(x)

        def live_snapshots(self) -> list[Snapshot]:
                with self.lock:
                        for x in self.snapshots.values():
                                self._settle(x)
                        return [x for x in self.snapshots.values() if x.state != "deleted"]

        def snapshot(self, sid: str) -> Snapshot:
                with self.lock:
                        x = self.snapshots.get(sid)
                        if x is not None:
                                self._settle(x)
                        if x is None or x.state == "deleted":
                                raise AwsError("InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")
                        return x

        def create_snapshot(self, vid: str, description: str, tags: list[tuple[str, str]]) -> Snapshot:
                with self.lock:
                        v = self.volume(vid)
                        if v.state not in ("available", "in-use"):
                                raise AwsError("IncorrectState", f"The volume '{vid}' is in the '{v.state}' state.")
                        self.check_tags(tags)
                        sid = new_id("snap")
                        image = None
                        if v.image:
                                # Point in time: the content as it is now, holes kept.
                                image = str(self.state_dir / "snapshots" / f"{sid}.img")
                                _sparse_copy(v.image, image)
                        now = time.monotonic()
                        x = Snapshot(sid, vid, v.size_gib, utcnow(), now, now + self.config.snapshot_delay_ms / 1000,
                                     image, description, v.encrypted, dict(tags),
                                     fails=vid in self.config.failing_snapshots)
                        self.snapshots[sid] = x
                        self.log("store", f"snapshot {sid} of {vid} started")
                        return x

        def delete_snapshot(self, sid: str) -> None:
                with self.lock:
                        x = self.snapshot(sid)
                        if x.state == "pending":
                                x.delete_requested = True
                                self.log("store", f"snapshot {sid} deleted while pending: goes when it completes")
                                return
                        self._delete_snapshot_now(x)

        def _delete_snapshot_now(self, x: Snapshot) -> None:
                x.state = "deleted"
                if x.image:
                        try:
                                os.unlink(x.image)
                        except FileNotFoundError:
                                pass
                self.log("store", f"snapshot {x.id} deleted")

        def create_volume_api(self, p: dict[str, Any], token: str | None) -> Volume:
                """CreateVolume: a blank volume or one from a snapshot, created with its tags;
                "creating" for volume_create_delay_ms, then "available". The same ClientToken
                with the same parameters answers the same volume; with other parameters
                IdempotentParameterMismatch. Tokens are kept per zone (whether EC2 scopes them
                by zone is not documented; per zone is the less forgiving guess for a client that
                moves a zone)."""
                with self.lock:
                        az = p["availability_zone"]
                        signature = tuple(sorted((k, repr(v)) for k, v in p.items() if k != "availability_zone"))
                        if token is not None:
                                known = self.client_tokens.get((token, az))
                                if known is not None:
                                        if known[0] != signature:
                                                raise AwsError("IdempotentParameterMismatch",
                                                               f"Client token {token} is already used with different "
                                                               "parameters.")
                                        v = self.volumes[known[1]]
                                        if v.state == "deleted":
                                                # What AWS answers then is not documented; emulators refuse.
                                                raise AwsError("IdempotentParameterMismatch",
                                                               f"Client token {token} is associated with a resource "
                                                               "that has already been deleted.")
                                        return v
                        v = self._new_volume_from(p)
                        if token is not None:
                                self.client_tokens[(token, az)] = (signature, v.id)
                        return v

        def _new_volume_from(self, p: dict[str, Any]) -> Volume:
                vid = new_id("vol")
                x = self.snapshot(p["snapshot_id"]) if p.get("snapshot_id") else None
                if x is not None and x.state != "completed":
                        raise AwsError("IncorrectState", f"Snapshot is in invalid state - {x.state}")
                size = p.get("size") or (x.volume_size if x else None)
                if size is None:
                        raise AwsError("MissingParameter", "The request must contain the parameter size or snapshotId")
                if x is not None and size < x.volume_size:
                        raise AwsError("InvalidParameterValue",
                                       f"Volume of {size}GiB is too small; minimum is {x.volume_size}GiB.")
                self.check_tags(list(p.get("tags", {}).items()))
                image = str(self.state_dir / "volumes" / f"{vid}.img")
                if x is not None and x.image:
                        _sparse_copy(x.image, image)
                with open(image, "ab") as f:
                        f.truncate(max(os.path.getsize(image), size * GIB))
                v = Volume(vid, p["availability_zone"], size, p.get("volume_type") or "gp2", "creating", utcnow(), image,
                           dict(p.get("tags", {})), bool(p.get("multi_attach")),
                           snapshot_id=x.id if x else "", encrypted=bool(p.get("encrypted")) or bool(x and x.encrypted),
                           provisioned_iops=p.get("iops"), provisioned_throughput=p.get("throughput"))
                self.volumes[vid] = v
                self.log("store", f"creating {vid} in {v.availability_zone}, {size} GiB"
                         + (f" from {x.id}" if x else ""))
                self._later(f"create-{vid}", self.config.volume_create_delay_ms, 0.1, lambda: self._complete_create(v))
                return v

        def _complete_create(self, v: Volume) -> bool:
                if v.state == "creating":
                        v.state = "available"
                        self.log("store", f"{v.id} available")
                return True

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


def _sparse_copy(src: str, dst: str) -> None:
        """A copy of an image that keeps its holes (images are sparse, the disk is shared)."""
        tmp = dst + ".tmp"
        r = subprocess.run(["cp", "--sparse=always", src, tmp], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
                raise AwsError("InternalError", f"copying {src}: {r.stderr.strip()}", 500)
        os.rename(tmp, dst)
