# SPDX-License-Identifier: MIT
"""EC2 (Query API version 2016-11-15): DescribeVolumes, AttachVolume, DetachVolume,
CreateTags, DeleteTags, DeleteVolume, ModifyInstanceAttribute, DescribeInstances, with
EC2's filters and the XML shapes of its answers. The state behind them is store.py's."""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from .base import ACCOUNT_ID, ROOT_DEVICE, AwsError, iso_ms
from .model import Attachment, Instance, Volume
from .query import Filters, Paginator, QueryService, indexed, indexed_groups, parse_bool, required
from .store import Store
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
                }
                self.read_only = {"DescribeVolumes", "DescribeInstances"}

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
