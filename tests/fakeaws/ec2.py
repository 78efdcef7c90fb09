# SPDX-License-Identifier: MIT
"""EC2 (Query API version 2016-11-15): DescribeVolumes, AttachVolume, DetachVolume,
CreateTags, DeleteTags, DeleteVolume, ModifyInstanceAttribute, DescribeInstances,
CreateSnapshot, DescribeSnapshots, DeleteSnapshot, CreateVolume, with EC2's filters and the
XML shapes of its answers. The state behind them is store.py's."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Callable

from .base import ACCOUNT_ID, ROOT_DEVICE, AwsError, iso_ms
from .model import Attachment, Instance, Snapshot, Volume
from .query import Filters, Paginator, QueryService, indexed, indexed_groups, parse_bool, required
from .store import VOLUME_TYPES, Store
from .xmlout import Node, xml_bool

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


# --------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------

VOLUME_FILTERS: dict[str, Callable[[Volume], list[str]]] = {
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
SNAPSHOT_FILTERS: dict[str, Callable[[Snapshot], list[str]]] = {
        "description": lambda x: [x.description],
        "encrypted": lambda x: [xml_bool(x.encrypted)],
        "owner-alias": lambda x: [],
        "owner-id": lambda x: [ACCOUNT_ID],
        "progress": lambda x: [x.progress(time.monotonic())],
        "snapshot-id": lambda x: [x.id],
        "start-time": lambda x: [iso_ms(x.start_time)],
        "status": lambda x: [x.state],
        "storage-tier": lambda x: ["standard"],
        "volume-id": lambda x: [x.volume_id],
        "volume-size": lambda x: [str(x.volume_size)],
        "tag-key": lambda x: list(x.tags),
        "tag-value": lambda x: list(x.tags.values()),
}
INSTANCE_FILTERS: dict[str, Callable[[Instance], list[str]]] = {
        "instance-id": lambda i: [i.id],
        "availability-zone": lambda i: [i.availability_zone],
        "instance-state-name": lambda i: [i.state],
        "instance-type": lambda i: [i.instance_type],
        "instance-lifecycle": lambda i: [i.lifecycle] if i.lifecycle == "spot" else [],
        "tag-key": lambda i: list(i.tags),
        "tag-value": lambda i: list(i.tags.values()),
}


# --------------------------------------------------------------------------
# XML shapes
# --------------------------------------------------------------------------

def tag_set(tags: dict[str, str]) -> list[Node]:
        # AWS omits tagSet altogether when there are no tags.
        if not tags:
                return []
        return [("tagSet", [("item", [("key", k), ("value", v)]) for k, v in tags.items()])]


def attachment_nodes(a: Attachment, status: str | None = None) -> list[Node]:
        return [("volumeId", a.volume_id), ("instanceId", a.instance_id), ("device", a.device),
                ("status", status or a.status), ("attachTime", iso_ms(a.attach_time)),
                ("deleteOnTermination", a.delete_on_termination)]


def volume_nodes(v: Volume) -> list[Node]:
        nodes: list[Node] = [
                ("volumeId", v.id), ("size", v.size_gib), ("snapshotId", v.snapshot_id),
                ("availabilityZone", v.availability_zone), ("status", v.state),
                ("createTime", iso_ms(v.create_time)),
                ("attachmentSet", [("item", attachment_nodes(a)) for a in v.attachments]),
        ]
        nodes += tag_set(v.tags)
        nodes.append(("volumeType", v.volume_type))
        if v.iops is not None:
                nodes.append(("iops", v.iops))
        nodes += [("encrypted", v.encrypted), ("multiAttachEnabled", v.multi_attach)]
        if v.throughput is not None:
                nodes.append(("throughput", v.throughput))
        return nodes


def created_volume_nodes(v: Volume) -> list[Node]:
        """CreateVolume's answer: the Volume without attachmentSet (AWS API reference sample)."""
        nodes: list[Node] = [("volumeId", v.id), ("size", v.size_gib), ("snapshotId", v.snapshot_id),
                             ("availabilityZone", v.availability_zone), ("status", v.state),
                             ("createTime", iso_ms(v.create_time)), ("volumeType", v.volume_type)]
        if v.iops is not None:
                nodes.append(("iops", v.iops))
        nodes.append(("encrypted", v.encrypted))
        nodes += tag_set(v.tags)
        nodes.append(("multiAttachEnabled", v.multi_attach))
        if v.throughput is not None:
                nodes.append(("throughput", v.throughput))
        return nodes


def snapshot_nodes(x: Snapshot, progress: str, describe: bool) -> list[Node]:
        """The Snapshot shape; CreateSnapshot answers an empty progress and no storageTier."""
        nodes: list[Node] = [("snapshotId", x.id), ("volumeId", x.volume_id), ("status", x.state),
                             ("startTime", iso_ms(x.start_time)), ("progress", progress), ("ownerId", ACCOUNT_ID),
                             ("volumeSize", x.volume_size), ("description", x.description),
                             ("encrypted", x.encrypted)]
        if describe:
                nodes.append(("storageTier", "standard"))
        return nodes + tag_set(x.tags)


def tag_specification(params: dict[str, str], resource_type: str) -> list[tuple[str, str]]:
        """TagSpecification.N.ResourceType and .Tag.M.Key / .Value: the tags for resource_type."""
        tags: list[tuple[str, str]] = []
        for n, spec in enumerate(indexed_groups(params, "TagSpecification"), 1):
                kind = spec.get("ResourceType")
                if not kind:
                        raise AwsError("InvalidParameterValue", "Tag specification resource type must have a value")
                if kind != resource_type:
                        raise AwsError("InvalidParameterValue",
                                       f"'{kind}' is not a valid taggable resource type for this operation.")
                for m, t in enumerate(indexed_groups(spec, "Tag"), 1):
                        if "Key" not in t:
                                raise AwsError("MissingParameter",
                                               f"The request must contain the parameter TagSpecification.{n}.Tag.{m}.Key")
                        tags.append((t["Key"], t.get("Value", "")))
        return tags


def optional_int(params: dict[str, str], name: str) -> int | None:
        raw = params.get(name)
        if raw is None:
                return None
        try:
                return int(raw)
        except ValueError:
                raise AwsError("InvalidParameterValue", f"Invalid value '{raw}' for {name}") from None


def instance_nodes(inst: Instance, store: Store) -> list[Node]:
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
        nodes += tag_set(inst.tags)
        nodes.append(("hypervisor", "xen"))
        return nodes


# --------------------------------------------------------------------------
# the actions
# --------------------------------------------------------------------------

class Ec2Api(QueryService):
        """The EC2 actions: parameters in, XML nodes out. AwsError for errors."""

        name = "ec2"
        namespace = EC2_NS

        def __init__(self, store: Store):
                super().__init__()
                self.store = store
                self.actions = {
                        "DescribeVolumes": self.describe_volumes,
                        "AttachVolume": self.attach_volume,
                        "DetachVolume": self.detach_volume,
                        "CreateTags": self.create_tags,
                        "DeleteTags": self.delete_tags,
                        "DeleteVolume": self.delete_volume,
                        "ModifyInstanceAttribute": self.modify_instance_attribute,
                        "DescribeInstances": self.describe_instances,
                        "CreateSnapshot": self.create_snapshot,
                        "DescribeSnapshots": self.describe_snapshots,
                        "DeleteSnapshot": self.delete_snapshot,
                        "CreateVolume": self.create_volume,
                }
                self.read_only = {"DescribeVolumes", "DescribeInstances", "DescribeSnapshots"}

        def check(self, action: str, params: dict[str, str]) -> None:
                if params.get("DryRun", "false").lower() == "true":
                        raise AwsError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)

        def describe_volumes(self, params: dict[str, str]) -> list[Node]:
                ids = indexed(params, "VolumeId")
                filters = Filters(params, VOLUME_FILTERS)
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
                        nodes: list[Node] = [("volumeSet", [("item", volume_nodes(v)) for v in page])]
                        if token:
                                nodes.append(("nextToken", token))
                        return nodes

        def attach_volume(self, params: dict[str, str]) -> list[Node]:
                vid = required(params, "VolumeId")
                iid = required(params, "InstanceId")
                device = required(params, "Device")
                a = self.store.attach_volume(vid, iid, device)
                return [(n, v) for n, v in attachment_nodes(a) if n != "deleteOnTermination"]

        def detach_volume(self, params: dict[str, str]) -> list[Node]:
                vid = required(params, "VolumeId")
                force = parse_bool("Force", params.get("Force", "false"))
                a = self.store.detach_volume(vid, params.get("InstanceId") or None, params.get("Device") or None, force)
                return [(n, v) for n, v in attachment_nodes(a) if n != "deleteOnTermination"]

        @staticmethod
        def tagging(params: dict[str, str], default: str | None) -> tuple[list[str], list[tuple[str, Any]]]:
                """ResourceId.N and Tag.N.Key / Tag.N.Value (default where no Value is given)."""
                ids = indexed(params, "ResourceId")
                if not ids:
                        raise AwsError("MissingParameter", "The request must contain the parameter resourceIdSet")
                tags = []
                for n, t in enumerate(indexed_groups(params, "Tag"), 1):
                        if "Key" not in t:
                                raise AwsError("MissingParameter", f"The request must contain the parameter Tag.{n}.Key")
                        tags.append((t["Key"], t.get("Value", default)))
                return ids, tags

        def create_tags(self, params: dict[str, str]) -> list[Node]:
                ids, tags = self.tagging(params, "")
                if not tags:
                        raise AwsError("MissingParameter", "The request must contain the parameter tagSet")
                self.store.create_tags(ids, tags)
                return [("return", True)]

        def delete_tags(self, params: dict[str, str]) -> list[Node]:
                ids, tags = self.tagging(params, None)
                self.store.delete_tags(ids, tags)
                return [("return", True)]

        def delete_volume(self, params: dict[str, str]) -> list[Node]:
                self.store.delete_volume(required(params, "VolumeId"))
                return [("return", True)]

        def modify_instance_attribute(self, params: dict[str, str]) -> list[Node]:
                iid = required(params, "InstanceId")
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
                filters = Filters(params, INSTANCE_FILTERS)
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
                                ("instancesSet", [("item", instance_nodes(i, self.store))]),
                        ]) for i in page]
                        nodes: list[Node] = [("reservationSet", reservations)]
                        if token:
                                nodes.append(("nextToken", token))
                        return nodes

        # -- snapshots and volumes made from them --

        def create_snapshot(self, params: dict[str, str]) -> list[Node]:
                vid = required(params, "VolumeId")
                x = self.store.create_snapshot(vid, params.get("Description", ""), tag_specification(params, "snapshot"))
                # A fresh snapshot's progress is empty, as in AWS's sample answer.
                return snapshot_nodes(x, "", describe=False)

        def describe_snapshots(self, params: dict[str, str]) -> list[Node]:
                ids = indexed(params, "SnapshotId")
                owners = indexed(params, "Owner")
                filters = Filters(params, SNAPSHOT_FILTERS)
                with self.store.lock:
                        pager = Paginator(params, "DescribeSnapshots", 5, 1000, self.store.config.max_results_cap,
                                          bool(ids), ids_param="snapshotSet")
                        live = {x.id: x for x in self.store.live_snapshots()}
                        if ids:
                                missing = [i for i in dict.fromkeys(ids) if i not in live]
                                if missing:
                                        raise AwsError("InvalidSnapshot.NotFound",
                                                       f"The snapshot '{missing[0]}' does not exist.")
                                candidates = [live[i] for i in dict.fromkeys(ids)]
                        else:
                                candidates = list(live.values())
                        # Every snapshot here is the account's own: "self" or its id lists them,
                        # other owners ("amazon", another account) have none.
                        if owners and not ({"self", ACCOUNT_ID} & set(owners)):
                                candidates = []
                        page, token = pager.page([x for x in candidates if filters.match(x)], key=lambda x: x.id)
                        now = time.monotonic()
                        nodes: list[Node] = [("snapshotSet", [("item", snapshot_nodes(x, x.progress(now), describe=True))
                                                              for x in page])]
                        if token:
                                nodes.append(("nextToken", token))
                        return nodes

        def delete_snapshot(self, params: dict[str, str]) -> list[Node]:
                self.store.delete_snapshot(required(params, "SnapshotId"))
                return [("return", True)]

        def create_volume(self, params: dict[str, str]) -> list[Node]:
                az = required(params, "AvailabilityZone")
                if not re.fullmatch(re.escape(self.store.region) + r"[a-f]", az):    # the zones of the fake region
                        raise AwsError("InvalidParameterValue", f"Invalid availability zone: [{az}]")
                token = params.get("ClientToken")
                if token is not None and (not token or len(token) > 64 or not token.isascii()):
                        raise AwsError("InvalidParameterValue", "Client token must be 1 to 64 ASCII characters.")
                vtype = params.get("VolumeType") or "gp2"
                if vtype not in VOLUME_TYPES:
                        raise AwsError("InvalidParameterValue", f"Value ({vtype}) for parameter volumeType is invalid.")
                iops = optional_int(params, "Iops")
                throughput = optional_int(params, "Throughput")
                if iops is not None and vtype not in ("io1", "io2", "gp3"):
                        raise AwsError("InvalidParameterCombination",
                                       f"The parameter iops is not supported for {vtype} volumes.")
                if iops is None and vtype in ("io1", "io2"):
                        raise AwsError("MissingParameter", f"The parameter iops must be specified for {vtype} volumes.")
                if throughput is not None and vtype != "gp3":
                        raise AwsError("InvalidParameterCombination",
                                       f"The parameter throughput is not supported for {vtype} volumes.")
                size = optional_int(params, "Size")
                if size is not None and size < 1:
                        raise AwsError("InvalidParameterValue", f"Invalid value '{size}' for size")
                p = {
                        "availability_zone": az,
                        "snapshot_id": params.get("SnapshotId") or None,
                        "size": size,
                        "volume_type": vtype,
                        "iops": iops,
                        "throughput": throughput,
                        "encrypted": parse_bool("Encrypted", params.get("Encrypted", "false")),
                        "kms_key_id": params.get("KmsKeyId"),
                        "multi_attach": parse_bool("MultiAttachEnabled", params.get("MultiAttachEnabled", "false")),
                        "tags": dict(tag_specification(params, "volume")),
                }
                if p["kms_key_id"] and not p["encrypted"]:
                        raise AwsError("InvalidParameterDependency",
                                       "The parameter KmsKeyId requires the parameter Encrypted to be set.")
                return created_volume_nodes(self.store.create_volume_api(p, token))
