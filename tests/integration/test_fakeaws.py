# SPDX-License-Identifier: MIT
"""Tests of the fake AWS itself (tests/fakeaws/).

The faithfulness checks use Debian's real awscli: it signs with botocore's SigV4
(which our verifier must accept) and parses our XML with botocore's EC2 model.
The rest talks to the fake directly and checks the real device work: loop
devices, sysfs entries and block device nodes.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import lbtest
from lbtest import GIB, awscli

NS = {"ec2": "http://ec2.amazonaws.com/doc/2016-11-15/"}


def aws_json(r) -> dict:
        assert r.returncode == 0, f"awscli failed ({r.returncode}): {r.stderr}"
        return json.loads(r.stdout)


def error_code(answer: lbtest.HttpAnswer) -> str:
        root = ET.fromstring(answer.body)
        assert root.tag == "Response", answer.text
        assert root.find("RequestID") is not None
        return root.findtext("Errors/Error/Code")


def ok_xml(answer: lbtest.HttpAnswer, action: str) -> ET.Element:
        assert answer.status == 200, answer.text
        root = ET.fromstring(answer.body)
        assert root.tag == f"{{{NS['ec2']}}}{action}Response"
        assert root.findtext("ec2:requestId", namespaces=NS)
        return root


def attach(fake, vid: str, iid: str, device: str = "/dev/sdg") -> lbtest.HttpAnswer:
        return fake.ec2("AttachVolume", {"VolumeId": vid, "InstanceId": iid, "Device": device})


# --------------------------------------------------------------------------
# awscli: signatures and XML as real clients see them
# --------------------------------------------------------------------------

def test_awscli_describe_volumes_sees_tags_and_attachments(fake, tmp_path):
        inst = fake.add_instance(availability_zone="us-east-1a",
                                 buffer={"device": "/dev/sdf", "tags": {"lifeboat:group": "g1", "empty": ""}})
        spare = fake.add_volume(availability_zone="us-east-1b", size_gib=2, tags={"Name": "spare"})

        vols = {v["VolumeId"]: v for v in aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes"))["Volumes"]}

        assert set(vols) == {inst["buffer_volume_id"], inst["root_volume_id"], spare}
        buf = vols[inst["buffer_volume_id"]]
        assert buf["State"] == "in-use"
        assert buf["AvailabilityZone"] == "us-east-1a"
        assert buf["Size"] == 1
        assert sorted((t["Key"], t["Value"]) for t in buf["Tags"]) == [("empty", ""), ("lifeboat:group", "g1")]
        [att] = buf["Attachments"]
        assert att["InstanceId"] == inst["instance_id"]
        assert att["Device"] == "/dev/sdf"
        assert att["State"] == "attached"
        assert att["DeleteOnTermination"] is True
        assert vols[spare]["State"] == "available"
        assert vols[spare]["Attachments"] == []
        assert vols[spare]["Size"] == 2
        assert vols[spare]["Tags"] == [{"Key": "Name", "Value": "spare"}]
        root = vols[inst["root_volume_id"]]
        assert "Tags" not in root, "tagSet must be omitted when there are no tags"
        assert root["Attachments"][0]["Device"] == "/dev/xvda"
        [req] = fake.requests(service="ec2", action="DescribeVolumes")
        assert req["status"] == 200 and req["instance"] == lbtest.STATIC_ACCESS_KEY


def test_awscli_filters(fake, tmp_path):
        a1 = fake.add_volume(availability_zone="us-east-1a", tags={"lifeboat:group": "g1"})
        a2 = fake.add_volume(availability_zone="us-east-1a", tags={"lifeboat:group": "g2"})
        b1 = fake.add_volume(availability_zone="us-east-1b", tags={"lifeboat:group": "g1"})
        fake.add_volume(availability_zone="us-east-1a", tags={"other": "g1"})

        def ids(*filters: str) -> set[str]:
                out = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes", "--filters", *filters))
                return {v["VolumeId"] for v in out["Volumes"]}

        assert ids("Name=tag:lifeboat:group,Values=g1") == {a1, b1}
        assert ids("Name=tag:lifeboat:group,Values=g1", "Name=availability-zone,Values=us-east-1a") == {a1}
        assert ids("Name=tag:lifeboat:group,Values=g1,g2", "Name=availability-zone,Values=us-east-1a") == {a1, a2}
        assert ids("Name=tag:lifeboat:group,Values=g?") == {a1, a2, b1}
        assert ids("Name=tag:lifeboat:group,Values=G1") == set(), "filters are case-sensitive"
        assert ids("Name=tag-key,Values=lifeboat:*", "Name=availability-zone,Values=*-1b") == {b1}
        assert ids("Name=status,Values=available") == {a1, a2, b1} | ids("Name=tag:other,Values=g1")

        r = awscli(fake, tmp_path, "ec2", "describe-volumes", "--filters", "Name=no-such-filter,Values=x")
        assert r.returncode == 254
        assert "InvalidParameterValue" in r.stderr


def test_awscli_follows_pagination(fake, tmp_path):
        made = {fake.add_volume(tags={"n": str(i)}) for i in range(12)}

        out = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes", "--page-size", "5"))
        assert {v["VolumeId"] for v in out["Volumes"]} == made
        assert len(out["Volumes"]) == 12, "no volume twice"
        assert len(fake.requests(action="DescribeVolumes")) == 3

        fake.reset_requests()
        out = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes", "--page-size", "5", "--max-items", "7"))
        assert len(out["Volumes"]) == 7
        assert out.get("NextToken"), "awscli says there is more"
        assert len(fake.requests(action="DescribeVolumes")) == 2


def test_awscli_attach_volume(fake, tmp_path):
        inst = fake.add_instance()
        vid = fake.add_volume()

        out = aws_json(awscli(fake, tmp_path, "ec2", "attach-volume", "--volume-id", vid,
                              "--instance-id", inst["instance_id"], "--device", "/dev/sdh"))

        assert out["VolumeId"] == vid
        assert out["InstanceId"] == inst["instance_id"]
        assert out["Device"] == "/dev/sdh"
        assert out["State"] == "attaching"
        assert dt.datetime.fromisoformat(out["AttachTime"])
        fake.wait_attachment(vid, "attached")
        vols = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes", "--volume-ids", vid))["Volumes"]
        assert vols[0]["State"] == "in-use"
        assert vols[0]["Attachments"][0]["State"] == "attached"
        assert vols[0]["Attachments"][0]["DeleteOnTermination"] is False


def test_awscli_detach_and_delete(fake, tmp_path):
        inst = fake.add_instance(buffer={"device": "/dev/sdf"})
        vid = inst["buffer_volume_id"]

        r = awscli(fake, tmp_path, "ec2", "delete-volume", "--volume-id", vid)
        assert r.returncode == 254 and "VolumeInUse" in r.stderr

        out = aws_json(awscli(fake, tmp_path, "ec2", "detach-volume", "--volume-id", vid))
        assert out["State"] == "detaching" and out["Device"] == "/dev/sdf"
        fake.wait_volume(vid, "available")

        r = awscli(fake, tmp_path, "ec2", "detach-volume", "--volume-id", vid)
        assert r.returncode == 254 and "IncorrectState" in r.stderr

        image = fake.volume(vid)["image"]
        assert awscli(fake, tmp_path, "ec2", "delete-volume", "--volume-id", vid).returncode == 0
        assert not os.path.exists(image)
        r = awscli(fake, tmp_path, "ec2", "describe-volumes", "--volume-ids", vid)
        assert r.returncode == 254 and "InvalidVolume.NotFound" in r.stderr


def test_awscli_tags(fake, tmp_path):
        vid = fake.add_volume(tags={"keep": "1", "a": "x", "b": "y"})
        assert awscli(fake, tmp_path, "ec2", "create-tags", "--resources", vid,
                      "--tags", "Key=lifeboat:claimed-by,Value=i-1", "Key=blank,Value=").returncode == 0
        # A tag with a value is only deleted when the value matches; one without a value always.
        assert awscli(fake, tmp_path, "ec2", "delete-tags", "--resources", vid,
                      "--tags", "Key=a,Value=not-x", "Key=b").returncode == 0
        assert fake.volume(vid)["tags"] == {"keep": "1", "a": "x", "lifeboat:claimed-by": "i-1", "blank": ""}

        r = awscli(fake, tmp_path, "ec2", "create-tags", "--resources", "vol-0123456789abcdef0", "--tags", "Key=k,Value=v")
        assert r.returncode == 254 and "InvalidVolume.NotFound" in r.stderr


def test_awscli_modify_instance_attribute_and_describe_instances(fake, tmp_path):
        inst = fake.add_instance(buffer={"device": "/dev/sdf"}, lifecycle="spot")
        iid = inst["instance_id"]

        def mappings() -> dict[str, dict]:
                out = aws_json(awscli(fake, tmp_path, "ec2", "describe-instances", "--instance-ids", iid))
                [res] = out["Reservations"]
                [i] = res["Instances"]
                assert i["InstanceId"] == iid
                assert i["Placement"]["AvailabilityZone"] == "us-east-1a"
                assert i["RootDeviceName"] == "/dev/xvda"
                assert i["InstanceLifecycle"] == "spot"
                return {m["DeviceName"]: m["Ebs"] for m in i["BlockDeviceMappings"]}

        before = mappings()
        assert before["/dev/sdf"]["DeleteOnTermination"] is True
        assert before["/dev/sdf"]["VolumeId"] == inst["buffer_volume_id"]
        assert before["/dev/xvda"]["VolumeId"] == inst["root_volume_id"]

        assert awscli(fake, tmp_path, "ec2", "modify-instance-attribute", "--instance-id", iid,
                      "--block-device-mappings",
                      '[{"DeviceName":"/dev/sdf","Ebs":{"DeleteOnTermination":false}}]').returncode == 0
        assert mappings()["/dev/sdf"]["DeleteOnTermination"] is False

        r = awscli(fake, tmp_path, "ec2", "modify-instance-attribute", "--instance-id", iid,
                   "--block-device-mappings", '[{"DeviceName":"/dev/sdz","Ebs":{"DeleteOnTermination":false}}]')
        assert r.returncode == 254 and "InvalidInstanceAttributeValue" in r.stderr


def test_awscli_snapshots(fake, tmp_path):
        """CreateSnapshot (tags in the same call), DescribeSnapshots (owners, filters, ids, pages),
        pending with a progress until the configured delay, then completed; DeleteSnapshot."""
        fake.config(snapshot_delay_ms=600000)          # pending until the test lets it complete
        image = lbtest.make_image(tmp_path / "images" / "src.img", 1, "xfs", {"chunk.log": "before"})
        vid = fake.add_volume(availability_zone="us-east-1b", image=str(image), tags={"lifeboat:group": "g1"})
        other = fake.add_volume(availability_zone="us-east-1b", size_gib=2)

        out = aws_json(awscli(fake, tmp_path, "ec2", "create-snapshot", "--volume-id", vid, "--description",
                              "lifeboat: moving", "--tag-specifications",
                              "ResourceType=snapshot,Tags=[{Key=lifeboat:group,Value=g1},"
                              "{Key=lifeboat:relocated-from,Value=" + vid + "}]"))
        snap = out["SnapshotId"]
        assert snap.startswith("snap-") and out["VolumeId"] == vid and out["State"] == "pending"
        assert out["VolumeSize"] == 1 and out["Description"] == "lifeboat: moving" and out["Progress"] == ""
        assert out["OwnerId"] == "123456789012" and out["Encrypted"] is False
        assert dt.datetime.fromisoformat(out["StartTime"])
        assert sorted((t["Key"], t["Value"]) for t in out["Tags"]) == [("lifeboat:group", "g1"),
                                                                     ("lifeboat:relocated-from", vid)]
        # What the snapshot holds is the volume as it was when it was taken.
        with lbtest.mounted_image(image) as mnt:
                (mnt / "chunk.log").write_text("after")
                os.sync()

        def describe(*args: str) -> list[dict]:
                return aws_json(awscli(fake, tmp_path, "ec2", "describe-snapshots", *args))["Snapshots"]

        [x] = describe("--owner-ids", "self", "--filters", "Name=tag:lifeboat:group,Values=g1")
        assert x["SnapshotId"] == snap and x["State"] == "pending" and x["StorageTier"] == "standard"
        assert x["Progress"].endswith("%") and int(x["Progress"][:-1]) < 100
        assert describe("--owner-ids", "amazon") == []
        assert describe("--filters", "Name=status,Values=completed") == []
        assert [s["SnapshotId"] for s in describe("--snapshot-ids", snap)] == [snap]
        assert [s["SnapshotId"] for s in describe("--filters", f"Name=volume-id,Values={vid}",
                                                  "Name=tag-key,Values=lifeboat:relocated-from")] == [snap]

        fake.config(snapshot_delay_ms=0)
        [x] = describe("--snapshot-ids", snap)
        assert x["State"] == "completed" and x["Progress"] == "100%"
        copy = aws_json(awscli(fake, tmp_path, "ec2", "create-volume", "--availability-zone", "us-east-1a",
                               "--snapshot-id", snap))["VolumeId"]
        fake.wait_volume(copy, "available")
        assert lbtest.image_files(fake.volume(copy)["image"]) == {"chunk.log": b"before"}

        # Pages: 7 snapshots, 5 per page.
        made = {snap}
        for _ in range(6):
                root = ok_xml(fake.ec2("CreateSnapshot", {"VolumeId": other}), "CreateSnapshot")
                made.add(root.findtext("ec2:snapshotId", namespaces=NS))
        fake.reset_requests()
        assert {s["SnapshotId"] for s in describe("--owner-ids", "self", "--page-size", "5")} == made
        assert len(fake.requests(action="DescribeSnapshots")) == 2

        assert awscli(fake, tmp_path, "ec2", "delete-snapshot", "--snapshot-id", snap).returncode == 0
        r = awscli(fake, tmp_path, "ec2", "describe-snapshots", "--snapshot-ids", snap)
        assert r.returncode == 254 and "InvalidSnapshot.NotFound" in r.stderr
        r = awscli(fake, tmp_path, "ec2", "delete-snapshot", "--snapshot-id", snap)
        assert r.returncode == 254 and "InvalidSnapshot.NotFound" in r.stderr
        r = awscli(fake, tmp_path, "ec2", "create-snapshot", "--volume-id", "vol-0123456789abcdef0")
        assert r.returncode == 254 and "InvalidVolume.NotFound" in r.stderr
        assert not os.path.exists(tmp_path / "fakeaws" / "snapshots" / f"{snap}.img")


def test_awscli_delete_pending_snapshot_takes_effect_when_it_completes(fake, tmp_path):
        fake.config(snapshot_delay_ms=600000)
        vid = fake.add_volume()
        snap = aws_json(awscli(fake, tmp_path, "ec2", "create-snapshot", "--volume-id", vid))["SnapshotId"]
        assert awscli(fake, tmp_path, "ec2", "delete-snapshot", "--snapshot-id", snap).returncode == 0
        [x] = aws_json(awscli(fake, tmp_path, "ec2", "describe-snapshots", "--snapshot-ids", snap))["Snapshots"]
        assert x["State"] == "pending"
        fake.config(snapshot_delay_ms=0)
        assert fake.snapshots()[0]["state"] == "deleted"
        out = aws_json(awscli(fake, tmp_path, "ec2", "describe-snapshots", "--owner-ids", "self"))
        assert out["Snapshots"] == []


def test_awscli_create_volume_from_snapshot_and_client_token(fake, tmp_path):
        fake.config(snapshot_delay_ms=600000, volume_create_delay_ms=300)
        vid = fake.add_volume(availability_zone="us-east-1b", size_gib=2, volume_type="gp3")
        snap = aws_json(awscli(fake, tmp_path, "ec2", "create-snapshot", "--volume-id", vid))["SnapshotId"]

        def create(*args: str) -> subprocess.CompletedProcess:
                return awscli(fake, tmp_path, "ec2", "create-volume", "--availability-zone", "us-east-1a",
                              "--snapshot-id", snap, *args)

        # Not before the snapshot is completed.
        r = create()
        assert r.returncode == 254 and "IncorrectState" in r.stderr
        assert "Snapshot is in invalid state - pending" in r.stderr
        fake.config(snapshot_delay_ms=0)
        assert fake.snapshots()[0]["state"] == "completed"

        args = ["--volume-type", "gp3", "--iops", "4000", "--throughput", "250", "--client-token",
                "lifeboat-relocate-" + vid, "--tag-specifications",
                "ResourceType=volume,Tags=[{Key=lifeboat:state,Value=dirty},{Key=lifeboat:relocated-from,Value="
                + vid + "}]"]
        out = aws_json(create(*args))
        copy = out["VolumeId"]
        assert out["State"] == "creating" and out["AvailabilityZone"] == "us-east-1a" and out["SnapshotId"] == snap
        assert out["Size"] == 2 and out["VolumeType"] == "gp3" and out["Iops"] == 4000 and out["Throughput"] == 250
        assert sorted((t["Key"], t["Value"]) for t in out["Tags"]) == [("lifeboat:relocated-from", vid),
                                                                     ("lifeboat:state", "dirty")]
        assert "Attachments" not in out, "CreateVolume does not answer attachmentSet"
        fake.wait_volume(copy, "available")
        [v] = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes", "--filters",
                              f"Name=snapshot-id,Values={snap}"))["Volumes"]
        assert v["VolumeId"] == copy and v["SnapshotId"] == snap

        # The same token with the same parameters: the same volume, nothing new.
        assert aws_json(create(*args))["VolumeId"] == copy
        # The same token with other parameters: refused.
        r = create(*args[:-2], "--size", "3")
        assert r.returncode == 254 and "IdempotentParameterMismatch" in r.stderr
        assert len([x for x in fake.volumes() if x["snapshot_id"] == snap]) == 1

        # Parameters EC2 refuses.
        for bad, code in ((["--size", "1"], "InvalidParameterValue"),       # smaller than the snapshot
                          (["--volume-type", "gp2", "--iops", "300"], "InvalidParameterCombination"),
                          (["--client-token", "x" * 65], "InvalidParameterValue")):
                r = create(*bad)
                assert r.returncode == 254 and code in r.stderr, (bad, r.stderr)
        r = awscli(fake, tmp_path, "ec2", "create-volume", "--availability-zone", "us-east-1z", "--size", "1")
        assert r.returncode == 254 and "Invalid availability zone" in r.stderr
        r = awscli(fake, tmp_path, "ec2", "create-volume", "--availability-zone", "us-east-1a",
                   "--snapshot-id", "snap-0123456789abcdef0")
        assert r.returncode == 254 and "InvalidSnapshot.NotFound" in r.stderr
        # A blank one.
        out = aws_json(awscli(fake, tmp_path, "ec2", "create-volume", "--availability-zone", "us-east-1c",
                              "--size", "1"))
        assert out["SnapshotId"] == "" and out["VolumeType"] == "gp2"


def test_awscli_error_not_found(fake, tmp_path):
        r = awscli(fake, tmp_path, "ec2", "describe-volumes", "--volume-ids", "vol-0000000000000000")
        assert r.returncode == 254
        assert "InvalidVolume.NotFound" in r.stderr
        assert "vol-0000000000000000" in r.stderr


def test_awscli_bad_secret_is_auth_failure(fake, tmp_path):
        r = awscli(fake, tmp_path, "ec2", "describe-volumes", secret_key="not-the-secret")
        assert r.returncode == 254
        assert "AuthFailure" in r.stderr
        r = awscli(fake, tmp_path, "ec2", "describe-volumes", access_key="AKIDUNKNOWN", secret_key="x")
        assert r.returncode == 254 and "AuthFailure" in r.stderr
        assert [q["status"] for q in fake.requests(action="DescribeVolumes")] == [401, 401]


def test_awscli_retries_throttling(fake, tmp_path):
        vid = fake.add_volume()
        fake.fault(action="DescribeVolumes", kind="throttle", count=1)

        out = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes"))

        assert [v["VolumeId"] for v in out["Volumes"]] == [vid]
        reqs = fake.requests(action="DescribeVolumes")
        assert [q["status"] for q in reqs] == [503, 200], "botocore saw RequestLimitExceeded as throttling"
        assert reqs[0]["fault"] == "throttle"


def test_awscli_token_bucket_throttling(fake, tmp_path):
        """EC2's request rate limit: a token bucket per action. awscli (retries off) sees EC2's
        RequestLimitExceeded once the bucket is empty; other actions have buckets of their own."""
        vid = fake.add_volume()
        fake.throttle("DescribeVolumes", capacity=2, refill_per_s=0)
        no_retry = {"AWS_MAX_ATTEMPTS": "1"}
        for _ in range(2):
                out = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes", extra_env=no_retry))
                assert [v["VolumeId"] for v in out["Volumes"]] == [vid]
        r = awscli(fake, tmp_path, "ec2", "describe-volumes", extra_env=no_retry)
        assert r.returncode == 254, r
        assert "An error occurred (RequestLimitExceeded) when calling the DescribeVolumes operation" in r.stderr
        assert "Request limit exceeded." in r.stderr
        aws_json(awscli(fake, tmp_path, "ec2", "describe-instances", extra_env=no_retry))

        reqs = fake.requests(action="DescribeVolumes")
        assert [q["status"] for q in reqs] == [200, 200, 503]
        assert reqs[2]["fault"] == "token_bucket"
        a = fake.ec2("DescribeVolumes")
        assert (a.status, error_code(a)) == (503, "RequestLimitExceeded")
        state = fake.throttles()
        assert state["rules"] == [{"action": "DescribeVolumes", "capacity": 2, "refill_per_s": 0.0}]
        assert state["buckets"]["DescribeVolumes"]["allowed"] == 2
        assert state["buckets"]["DescribeVolumes"]["throttled"] == 2
        assert "DescribeInstances" not in state["buckets"]


def test_token_bucket_refills_and_applies_per_action(fake):
        fake.throttle("*", capacity=1, refill_per_s=0)
        assert fake.ec2("DescribeVolumes").status == 200
        assert fake.ec2("DescribeInstances").status == 200         # a bucket of its own
        assert fake.ec2("DescribeVolumes").status == 503
        assert fake.ec2("DescribeInstances").status == 503

        # A rule of its own wins over "*", and starts full.
        fake.throttle("DescribeVolumes", capacity=2, refill_per_s=10)
        assert [fake.ec2("DescribeVolumes").status for _ in range(3)] == [200, 200, 503]
        time.sleep(0.25)                                            # 2.5 tokens, capped at 2
        assert [fake.ec2("DescribeVolumes").status for _ in range(3)] == [200, 200, 503]
        assert fake.ec2("DescribeInstances").status == 503

        fake.reset_throttle()
        assert fake.ec2("DescribeInstances").status == 200
        assert fake.throttles() == {"rules": [], "buckets": {}}
        for bad in ({"action": "imds", "capacity": 1, "refill_per_s": 1},
                    {"action": "DescribeVolumes", "capacity": 0, "refill_per_s": 1},
                    {"action": "DescribeVolumes", "capacity": 1, "refill_per_s": -1},
                    {"action": "DescribeVolumes", "capacity": 1, "refill_per_s": 1, "burst": 3}):
                a = lbtest.http("POST", f"{fake.ec2_endpoint}/_fake/throttle", json.dumps(bad).encode())
                assert a.status == 400, (bad, a.text)


def test_barrier_answers_requests_together(fake):
        """A barrier holds the next count requests of an action until all of them arrived."""
        fake.fault(action="DescribeVolumes", kind="barrier", count=3)
        done: dict[int, float] = {}

        def call(n: int) -> None:
                assert fake.ec2("DescribeVolumes").status == 200
                done[n] = time.monotonic()

        threads = []
        t0 = time.monotonic()
        for n in range(3):
                threads.append(threading.Thread(target=call, args=(n,)))
                threads[-1].start()
                time.sleep(0.3)
        for t in threads:
                t.join()
        assert min(done.values()) - t0 >= 0.6, "nobody was answered before the third arrived"
        assert max(done.values()) - min(done.values()) < 0.3
        assert [q["barrier"] for q in fake.requests(action="DescribeVolumes")] == ["released"] * 3
        assert fake.faults() == []
        assert fake.ec2("DescribeVolumes").status == 200           # used up

        # Nobody else comes: after timeout_ms the ones there go on, and the log says so.
        fake.fault(action="DescribeVolumes", kind="barrier", count=2, timeout_ms=300)
        t0 = time.monotonic()
        assert fake.ec2("DescribeVolumes").status == 200
        assert time.monotonic() - t0 >= 0.3
        assert fake.requests(action="DescribeVolumes")[-1]["barrier"] == "broken"
        for bad in ({"action": "imds", "kind": "barrier", "count": 2},
                    {"action": "DescribeVolumes", "kind": "barrier", "count": -1},
                    {"action": "DescribeVolumes", "kind": "barrier", "count": 2, "timeout_ms": 0}):
                a = lbtest.http("POST", f"{fake.ec2_endpoint}/_fake/faults", json.dumps(bad).encode())
                assert a.status == 400, (bad, a.text)


def test_awscli_uses_role_credentials_from_imds(fake, tmp_path):
        inst = fake.add_instance()
        # botocore appends "latest/..." to the endpoint without adding a slash.
        out = aws_json(awscli(fake, tmp_path, "ec2", "describe-instances", access_key="",
                              extra_env={"AWS_EC2_METADATA_DISABLED": "false",
                                         "AWS_EC2_METADATA_SERVICE_ENDPOINT": inst["imds_endpoint"] + "/"}))
        assert out["Reservations"][0]["Instances"][0]["InstanceId"] == inst["instance_id"]
        imds_paths = [r["action"] for r in fake.requests(service="imds")]
        assert "/latest/api/token" in imds_paths
        assert "/latest/meta-data/iam/security-credentials/lifeboat-role" in imds_paths
        [call] = fake.requests(action="DescribeInstances")
        assert call["instance"].startswith("ASIA") and call["status"] == 200


def test_expired_role_credentials(fake, tmp_path):
        inst = fake.add_instance()
        fake.config(credential_ttl_s=2)
        creds = json.loads(fake.imds(inst, "/latest/meta-data/iam/security-credentials/lifeboat-role").body)
        assert creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC"
        kw = dict(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"])

        # Quick calls first (awscli alone may take longer than the credentials live).
        assert fake.ec2("DescribeVolumes", token=creds["Token"], **kw).status == 200
        assert error_code(fake.ec2("DescribeVolumes", **kw)) == "AuthFailure", "the token is required"
        expiration = dt.datetime.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        time.sleep(max(0.0, (expiration - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.2)
        r = awscli(fake, tmp_path, "ec2", "describe-volumes", session_token=creds["Token"], **kw)
        assert r.returncode == 254 and "ExpiredToken" in r.stderr

        fresh = json.loads(fake.imds(inst, "/latest/meta-data/iam/security-credentials/lifeboat-role").body)
        assert fresh["AccessKeyId"] != creds["AccessKeyId"], "new credentials close to expiry"


# --------------------------------------------------------------------------
# CloudWatch: PutMetricData as Debian's awscli (Query protocol) sends it
# --------------------------------------------------------------------------

CW_NS = "http://monitoring.amazonaws.com/doc/2010-08-01/"


def cw_error(answer: lbtest.HttpAnswer) -> tuple[str, str, str]:
        """(Type, Code, Message) of CloudWatch's error document."""
        root = ET.fromstring(answer.body)
        assert root.tag == f"{{{CW_NS}}}ErrorResponse", answer.text
        assert root.findtext("cw:RequestId", namespaces={"cw": CW_NS})
        err = root.find("cw:Error", namespaces={"cw": CW_NS})
        return tuple(err.findtext(f"cw:{k}", namespaces={"cw": CW_NS}) for k in ("Type", "Code", "Message"))


def test_awscli_put_metric_data_is_recorded(fake, tmp_path):
        when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).replace(microsecond=0)
        data = [{"MetricName": "Stranded", "Value": 2, "Unit": "Count", "Timestamp": when.isoformat(),
                 "Dimensions": [{"Name": "Group", "Value": "ads"}, {"Name": "AvailabilityZone", "Value": "us-east-1a"}]},
                {"MetricName": "Ratio", "Value": 0.25, "StorageResolution": 1},
                {"MetricName": "Latency", "StatisticValues": {"SampleCount": 2, "Sum": 3, "Minimum": 1, "Maximum": 2},
                 "Unit": "Seconds"}]
        r = awscli(fake, tmp_path, "cloudwatch", "put-metric-data", "--namespace", "Lifeboat/test",
                   "--metric-data", json.dumps(data))
        assert r.returncode == 0, r.stderr
        got = fake.metrics()
        assert [(d["namespace"], d["metric_name"], d["value"], d["unit"]) for d in got] == [
                ("Lifeboat/test", "Stranded", 2, "Count"), ("Lifeboat/test", "Ratio", 0.25, None),
                ("Lifeboat/test", "Latency", None, "Seconds")]
        assert got[0]["dimensions"] == {"Group": "ads", "AvailabilityZone": "us-east-1a"}
        assert dt.datetime.fromisoformat(got[0]["timestamp"].replace("Z", "+00:00")) == when
        assert got[1]["storage_resolution"] == 1 and got[1]["dimensions"] == {}
        assert got[2]["statistic_values"] == {"SampleCount": 2, "Sum": 3, "Minimum": 1, "Maximum": 2}
        # Signed for "monitoring", answered as CloudWatch, logged as such.
        [call] = fake.requests(action="PutMetricData")
        assert (call["service"], call["status"], call["instance"]) == ("monitoring", 200, lbtest.STATIC_ACCESS_KEY)
        fake.reset_metrics()
        assert fake.metrics() == []


def test_awscli_sees_cloudwatch_errors(fake, tmp_path):
        def put(ns: str, data: list) -> tuple[int, str]:
                r = awscli(fake, tmp_path, "cloudwatch", "put-metric-data", "--namespace", ns,
                           "--metric-data", json.dumps(data), extra_env={"AWS_MAX_ATTEMPTS": "1"})
                return r.returncode, r.stderr

        rc, err = put("AWS/EBS", [{"MetricName": "M", "Value": 1}])
        assert rc == 254 and "(InvalidParameterValue)" in err and "AWS/EBS" in err, err
        # botocore does not check enums: CloudWatch does.
        rc, err = put("Lifeboat", [{"MetricName": "M", "Value": 1, "Unit": "Furlongs"}])
        assert rc == 254 and "MetricData.member.1.Unit must be a value in the set" in err, err
        old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=15)).isoformat()
        rc, err = put("Lifeboat", [{"MetricName": "M", "Value": 1}, {"MetricName": "M", "Value": 1, "Timestamp": old}])
        assert rc == 254 and "MetricData.member.2.Timestamp must specify a time within the past two weeks" in err
        rc, err = put("Lifeboat", [{"MetricName": "M", "Value": 1, "StatisticValues":
                                    {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
        assert rc == 254 and "(InvalidParameterCombination)" in err and "mutually exclusive" in err, err
        rc, err = put("Lifeboat", [{"MetricName": "M", "Value": 1, "Dimensions": [{"Name": "D", "Value": str(i)}
                                                                                  for i in range(31)]}])
        assert rc == 254 and "must not have a size greater than 30" in err, err
        # A refused request is taken not at all, not half.
        assert fake.metrics() == []
        # Throttling is retried by botocore (standard mode), and then taken.
        fake.fault(action="PutMetricData", kind="throttle", count=1)
        r = awscli(fake, tmp_path, "cloudwatch", "put-metric-data", "--namespace", "Lifeboat",
                   "--metric-name", "M", "--value", "7")
        assert r.returncode == 0, r.stderr
        assert [q["status"] for q in fake.requests(action="PutMetricData")][-2:] == [400, 200]
        assert [d["value"] for d in fake.metrics()] == [7]


def test_awscli_bad_secret_for_cloudwatch(fake, tmp_path):
        r = awscli(fake, tmp_path, "cloudwatch", "put-metric-data", "--namespace", "Lifeboat",
                   "--metric-name", "M", "--value", "1", secret_key="not-the-secret")
        assert r.returncode == 254 and "SignatureDoesNotMatch" in r.stderr, r.stderr
        r = awscli(fake, tmp_path, "cloudwatch", "put-metric-data", "--namespace", "Lifeboat",
                   "--metric-name", "M", "--value", "1", access_key="AKIDUNKNOWN", secret_key="x")
        assert r.returncode == 254 and "InvalidClientTokenId" in r.stderr, r.stderr
        assert fake.metrics() == []


def test_put_metric_data_shapes_and_errors(fake):
        ok = fake.cloudwatch("PutMetricData", {"Namespace": "Lifeboat", "MetricData.member.1.MetricName": "M",
                                               "MetricData.member.1.Value": "1"})
        assert ok.status == 200, ok.text
        root = ET.fromstring(ok.body)
        assert root.tag == f"{{{CW_NS}}}PutMetricDataResponse"
        assert [c.tag for c in root] == [f"{{{CW_NS}}}ResponseMetadata"], "no output, no Result element"
        assert root.findtext("cw:ResponseMetadata/cw:RequestId", namespaces={"cw": CW_NS})

        member = {"MetricData.member.1.MetricName": "M", "MetricData.member.1.Value": "1"}
        for params, status, code, message in [
                ({"MetricData.member.1.MetricName": "M", "MetricData.member.1.Value": "1"}, 400, "MissingParameter",
                 "The parameter Namespace is required."),
                ({"Namespace": "Lifeboat"}, 400, "MissingParameter", "The parameter MetricData is required."),
                ({"Namespace": "Lifeboat", "MetricData": ""}, 400, "MissingParameter",
                 "The parameter MetricData is required."),
                ({"Namespace": ":x", **member}, 400, "InvalidParameterValue",
                 "The value :x for parameter Namespace is invalid."),
                ({"Namespace": "Lifeboat", "MetricData.member.1.Value": "1",
                  "MetricData.member.1.Dimensions.member.1.Name": "Group",
                  "MetricData.member.2.MetricName": "M", "MetricData.member.2.Value": "1",
                  "MetricData.member.2.Dimensions.member.1.Name": "Group"}, 400, "MissingParameter",
                 "The parameter MetricData.member.1.MetricName is required.\n"
                 "The parameter MetricData.member.1.Dimensions.member.1.Value is required.\n"
                 "The parameter MetricData.member.2.Dimensions.member.1.Value is required."),
                ({"Namespace": "Lifeboat", "MetricData.member.1.MetricName": "M"}, 400, "InvalidParameterCombination",
                 "At least one of the parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues "
                 "must be specified."),
                ({"Namespace": "Lifeboat", "MetricData.member.1.MetricName": "M", "MetricData.member.1.Value": "NaN"},
                 400, "InvalidParameterValue", "The value NaN for parameter MetricData.member.1.Value is invalid."),
                ({"Namespace": "Lifeboat", **member, "MetricData.member.1.StorageResolution": "5"}, 400,
                 "InvalidParameterValue", "The value 5 for parameter MetricData.member.1.StorageResolution is invalid."),
                ({"Namespace": "Lifeboat", **{f"MetricData.member.{i}.{k}": v for i in range(1, 1002)
                                              for k, v in (("MetricName", "M"), ("Value", "1"))}}, 400,
                 "InvalidParameterValue", "The collection MetricData must not have a size greater than 1000."),
        ]:
                a = fake.cloudwatch("PutMetricData", params)
                assert (a.status, cw_error(a)) == (status, ("Sender", code, message)), params
        # A thousand is fine.
        big = {f"MetricData.member.{i}.{k}": v for i in range(1, 1001) for k, v in (("MetricName", "M"), ("Value", str(i)))}
        assert fake.cloudwatch("PutMetricData", {"Namespace": "Lifeboat", **big}).status == 200
        assert len(fake.metrics()) == 1001

        # SigV4 for "monitoring": signed for another service, the request is that service's.
        a = fake.cloudwatch("PutMetricData", {"Namespace": "Lifeboat", **member}, service="ec2")
        assert (a.status, error_code(a)) == (400, "InvalidAction")
        a = fake.cloudwatch("PutMetricData", {"Namespace": "Lifeboat", **member}, secret_key="wrong")
        assert (a.status, cw_error(a)[1]) == (403, "SignatureDoesNotMatch")
        a = fake.cloudwatch("ListMetrics")
        assert (a.status, cw_error(a)[1]) == (400, "InvalidAction")

        # Faults speak CloudWatch too.
        fake.fault(action="PutMetricData", kind="throttle")
        a = fake.cloudwatch("PutMetricData", {"Namespace": "Lifeboat", **member})
        assert (a.status, cw_error(a)) == (400, ("Sender", "Throttling", "Rate exceeded"))
        fake.fault(action="PutMetricData", kind="5xx")
        a = fake.cloudwatch("PutMetricData", {"Namespace": "Lifeboat", **member})
        assert (a.status, cw_error(a)[:2]) == (500, ("Receiver", "InternalServiceError"))
        assert len(fake.metrics()) == 1001
        # Each request went to the service its signature names: one to EC2, the rest to CloudWatch.
        services = [r["service"] for r in fake.requests(action="PutMetricData")]
        assert services.count("ec2") == 1 and set(services) == {"ec2", "monitoring"}


# --------------------------------------------------------------------------
# SigV4 and EC2 errors, directly
# --------------------------------------------------------------------------

def test_curl_sigv4_is_accepted(fake, tmp_path):
        """curl's --aws-sigv4 is libcurl's CURLOPT_AWS_SIGV4, which lifeboat uses."""
        inst = fake.add_instance()
        creds = json.loads(fake.imds(inst, "/latest/meta-data/iam/security-credentials/lifeboat-role").body)

        def curl(user: str, *extra: str) -> tuple[int, str]:
                r = lbtest.run(["curl", "-sS", "--aws-sigv4", f"aws:amz:{fake.region}:ec2", "--user", user,
                                "-w", "\n%{http_code}", "--data", "Action=DescribeVolumes&Version=2016-11-15",
                                *extra, fake.ec2_endpoint + "/"])
                body, _, code = r.stdout.rpartition("\n")
                return int(code), body

        status, body = curl(f"{lbtest.STATIC_ACCESS_KEY}:{lbtest.STATIC_SECRET_KEY}")
        assert status == 200, body
        status, body = curl(f"{creds['AccessKeyId']}:{creds['SecretAccessKey']}",
                            "-H", f"x-amz-security-token: {creds['Token']}")
        assert status == 200, body
        status, body = curl(f"{lbtest.STATIC_ACCESS_KEY}:wrong")
        assert status == 401 and "<Code>AuthFailure</Code>" in body
        assert [r["instance"] for r in fake.requests(action="DescribeVolumes")] == \
                [lbtest.STATIC_ACCESS_KEY, creds["AccessKeyId"], lbtest.STATIC_ACCESS_KEY]


def test_sigv4_rejections(fake):
        good = fake.ec2("DescribeVolumes")
        ok_xml(good, "DescribeVolumes")

        skewed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=6)
        body = b"Action=DescribeVolumes&Version=2016-11-15"
        host = f"127.0.0.1:{fake.ec2_port}"
        for headers, status, code in [
                (lbtest.sigv4_headers(host, body, lbtest.STATIC_ACCESS_KEY, lbtest.STATIC_SECRET_KEY,
                                      "us-east-1", when=skewed), 400, "RequestExpired"),
                (lbtest.sigv4_headers(host, body, lbtest.STATIC_ACCESS_KEY, lbtest.STATIC_SECRET_KEY,
                                      "eu-west-1"), 401, "AuthFailure"),
                (lbtest.sigv4_headers(host, body, lbtest.STATIC_ACCESS_KEY, lbtest.STATIC_SECRET_KEY,
                                      "us-east-1", service="s3"), 401, "AuthFailure"),
                (lbtest.sigv4_headers(host, body + b"&x=1", lbtest.STATIC_ACCESS_KEY, lbtest.STATIC_SECRET_KEY,
                                      "us-east-1"), 401, "AuthFailure"),
                (lbtest.sigv4_headers(host, body, lbtest.STATIC_ACCESS_KEY, lbtest.STATIC_SECRET_KEY,
                                      "us-east-1", token="unexpected"), 401, "AuthFailure"),
                ({"host": host}, 401, "MissingAuthenticationToken"),
        ]:
                a = lbtest.http("POST", fake.ec2_endpoint + "/", body, headers)
                assert (a.status, error_code(a)) == (status, code)


def test_ec2_parameter_errors(fake):
        vid = fake.add_volume()
        for action, params, code in [
                ("DescribeVolumes", {"MaxResults": "4"}, "InvalidParameterValue"),
                ("DescribeVolumes", {"MaxResults": "1001"}, "InvalidParameterValue"),
                ("DescribeVolumes", {"MaxResults": "5", "VolumeId.1": vid}, "InvalidParameterCombination"),
                ("DescribeVolumes", {"NextToken": "garbage"}, "InvalidPaginationToken"),
                ("DescribeVolumes", {"Filter.1.Name": "bogus", "Filter.1.Value.1": "x"}, "InvalidParameterValue"),
                ("AttachVolume", {"VolumeId": vid}, "MissingParameter"),
                ("FlyToTheMoon", {}, "InvalidAction"),
        ]:
                a = fake.ec2(action, params)
                assert a.status == 400, (action, params, a.text)
                assert error_code(a) == code, (action, params)
        a = fake.ec2("DescribeVolumes", {"Version": ""})
        assert error_code(a) == "MissingParameter"


def test_describe_volumes_answer_shape(fake):
        inst = fake.add_instance(buffer={"device": "/dev/sdf", "tags": {"k": "v"}})
        root = ok_xml(fake.ec2("DescribeVolumes", {"VolumeId.1": inst["buffer_volume_id"]}), "DescribeVolumes")
        [item] = root.findall("ec2:volumeSet/ec2:item", NS)
        for name in ("volumeId", "size", "snapshotId", "availabilityZone", "status", "createTime",
                     "volumeType", "iops", "encrypted", "multiAttachEnabled", "throughput"):
                assert item.find(f"ec2:{name}", NS) is not None, name
        att = item.find("ec2:attachmentSet/ec2:item", NS)
        assert {c.tag.split("}")[1] for c in att} == {"volumeId", "instanceId", "device", "status", "attachTime",
                                                      "deleteOnTermination"}
        assert item.findtext("ec2:tagSet/ec2:item/ec2:key", namespaces=NS) == "k"
        assert root.find("ec2:nextToken", NS) is None

        for _ in range(6):
                fake.add_volume()
        page = ok_xml(fake.ec2("DescribeVolumes", {"MaxResults": "5"}), "DescribeVolumes")
        assert len(page.findall("ec2:volumeSet/ec2:item", NS)) == 5
        token = page.findtext("ec2:nextToken", namespaces=NS)
        assert token
        rest = ok_xml(fake.ec2("DescribeVolumes", {"MaxResults": "5", "NextToken": token}), "DescribeVolumes")
        assert len(rest.findall("ec2:volumeSet/ec2:item", NS)) == 3   # 6 + buffer + root = 8
        assert rest.find("ec2:nextToken", NS) is None

        fake.config(max_results_cap=3)
        capped = ok_xml(fake.ec2("DescribeVolumes"), "DescribeVolumes")
        assert len(capped.findall("ec2:volumeSet/ec2:item", NS)) == 3
        assert capped.findtext("ec2:nextToken", namespaces=NS)


# --------------------------------------------------------------------------
# IMDS
# --------------------------------------------------------------------------

def test_imds_requires_a_token(fake):
        inst = fake.add_instance()
        url = fake.imds_url(inst, "/latest/meta-data/instance-id")
        assert lbtest.http("GET", url).status == 401
        assert lbtest.http("GET", url, headers={"X-aws-ec2-metadata-token": "bogus"}).status == 401
        other = fake.add_instance()
        assert lbtest.http("GET", url, headers={"X-aws-ec2-metadata-token": fake.imds_token(other)}).status == 401
        a = fake.imds(inst, "/latest/meta-data/instance-id")
        assert (a.status, a.text) == (200, inst["instance_id"])
        assert fake.imds(inst, "/latest/meta-data/no-such-thing").status == 404
        # Without a prefix: the first instance.
        token = fake.imds_token(inst)
        a = lbtest.http("GET", f"http://127.0.0.1:{fake.imds_port}/latest/meta-data/instance-id",
                        headers={"X-aws-ec2-metadata-token": token})
        assert a.text == inst["instance_id"]
        assert all(r["instance"] == inst["instance_id"] for r in fake.requests(service="imds")
                   if r["action"] == "/latest/meta-data/instance-id")


def test_imds_token_ttl_bounds(fake):
        inst = fake.add_instance()
        url = fake.imds_url(inst, "/latest/api/token")
        for ttl, status in [("0", 400), ("21601", 400), ("abc", 400), (None, 400), ("1", 200), ("21600", 200)]:
                headers = {} if ttl is None else {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
                assert lbtest.http("PUT", url, headers=headers).status == status, ttl
        a = lbtest.http("PUT", url, headers={"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                             "X-Forwarded-For": "10.1.2.3"})
        assert a.status == 403
        assert lbtest.http("GET", url).status == 405


def test_imds_token_expires(fake):
        inst = fake.add_instance()
        fake.config(token_ttl_max=1)
        token = fake.imds_token(inst, ttl=21600)
        assert fake.imds(inst, "/latest/meta-data/instance-id", token).status == 200
        time.sleep(1.2)
        assert fake.imds(inst, "/latest/meta-data/instance-id", token).status == 401


def test_imds_metadata(fake):
        inst = fake.add_instance(availability_zone="us-east-1b", instance_type="c5.xlarge", lifecycle="spot",
                                 buffer={"device": "/dev/sdf"})
        get = lambda p: fake.imds(inst, "/latest/meta-data/" + p).text
        assert get("placement/region") == "us-east-1"
        assert get("placement/availability-zone") == "us-east-1b"
        assert get("placement/availability-zone-id") == "use1-az2"
        assert get("instance-type") == "c5.xlarge"
        assert get("instance-life-cycle") == "spot"
        assert get("block-device-mapping/").split("\n") == ["ami", "ebs1", "root"]
        assert get("block-device-mapping/ebs1") == "sdf"
        assert get("iam/security-credentials/") == "lifeboat-role"

        doc_text = fake.imds(inst, "/latest/dynamic/instance-identity/document").text
        doc = json.loads(doc_text)
        assert list(doc) == ["accountId", "architecture", "availabilityZone", "billingProducts",
                             "devpayProductCodes", "marketplaceProductCodes", "imageId", "instanceId",
                             "instanceType", "kernelId", "pendingTime", "privateIp", "ramdiskId", "region", "version"]
        assert doc["instanceId"] == inst["instance_id"]
        assert doc["availabilityZone"] == "us-east-1b"
        assert doc["region"] == "us-east-1" and doc["version"] == "2017-09-30"
        assert doc["billingProducts"] is None and doc["kernelId"] is None
        assert '  "accountId" : "' in doc_text, "pretty-printed like AWS"


def test_imds_events(fake):
        inst = fake.add_instance()
        for p in ("spot/instance-action", "events/recommendations/rebalance", "autoscaling/target-lifecycle-state"):
                assert fake.imds(inst, "/latest/meta-data/" + p).status == 404, p

        fake.events(inst, spot={"action": "terminate", "time": "2026-01-02T03:04:05Z"},
                    rebalance={"noticeTime": "2026-01-02T03:00:00Z"}, lifecycle_state="Terminated")
        assert json.loads(fake.imds(inst, "/latest/meta-data/spot/instance-action").text) == \
                {"action": "terminate", "time": "2026-01-02T03:04:05Z"}
        assert json.loads(fake.imds(inst, "/latest/meta-data/events/recommendations/rebalance").text) == \
                {"noticeTime": "2026-01-02T03:00:00Z"}
        assert fake.imds(inst, "/latest/meta-data/autoscaling/target-lifecycle-state").text == "Terminated"

        fake.events(inst, spot=None)
        assert fake.imds(inst, "/latest/meta-data/spot/instance-action").status == 404
        token = fake.imds_token(inst)
        t0 = time.monotonic()
        fake.events(inst, spot={"action": "stop"}, spot_after_s=1.5)
        assert fake.imds(inst, "/latest/meta-data/spot/instance-action", token).status == 404
        assert time.monotonic() - t0 < 1.5, "too slow to see the notice not there yet"
        time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))
        notice = json.loads(fake.imds(inst, "/latest/meta-data/spot/instance-action", token).text)
        assert notice["action"] == "stop" and notice["time"].endswith("Z")


def test_imds_modes_and_faults(fake):
        inst = fake.add_instance()
        token = fake.imds_token(inst)
        url = fake.imds_url(inst, "/latest/meta-data/instance-id")
        hdr = {"X-aws-ec2-metadata-token": token}

        fake.config(imds_mode="down")
        with pytest.raises(urllib.error.URLError) as e:
                lbtest.http("GET", url, headers=hdr, timeout=2)
        assert isinstance(e.value.reason, ConnectionRefusedError)
        fake.config(imds_mode="500")
        assert lbtest.http("GET", url, headers=hdr).status == 500
        fake.config(imds_mode="hang")
        with pytest.raises((TimeoutError, urllib.error.URLError)):
                lbtest.http("GET", url, headers=hdr, timeout=0.5)
        fake.config(imds_mode="up")
        assert lbtest.http("GET", url, headers=hdr).text == inst["instance_id"]

        fake.fault(action="imds", kind="throttle", path="instance-id")
        assert lbtest.http("GET", url, headers=hdr).status == 429
        fake.fault(action="imds", kind="5xx", status=503)
        assert lbtest.http("GET", url, headers=hdr).status == 503
        fake.fault(action="imds", kind="drop")
        with pytest.raises((urllib.error.URLError, http.client.RemoteDisconnected, ConnectionError)):
                lbtest.http("GET", url, headers=hdr)
        assert lbtest.http("GET", url, headers=hdr).status == 200


def test_terminated_instance_imds_is_gone(fake):
        inst = fake.add_instance()
        token = fake.imds_token(inst)
        fake.terminate(inst["instance_id"])
        a = lbtest.http("GET", fake.imds_url(inst, "/latest/meta-data/instance-id"),
                        headers={"X-aws-ec2-metadata-token": token})
        assert a.status == 404
        a = lbtest.http("PUT", fake.imds_url(inst, "/latest/api/token"),
                        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        assert a.status == 404


# --------------------------------------------------------------------------
# real attach / detach
# --------------------------------------------------------------------------

def loop_backing(rdev: int) -> str | None:
        want = f"{os.major(rdev)}:{os.minor(rdev)}"
        for l in lbtest.loop_devices():
                if l["maj:min"] == want:
                        return l["back-file"]
        return None


def test_real_attach_and_detach(fake, tmp_path):
        image = lbtest.make_image(tmp_path / "data.img", fs="xfs", files={"logs/buffer.b1.log": b"hello"})
        inst = fake.add_instance()
        vid = fake.add_volume(image=str(image))
        sysfs, dev = Path(inst["sysfs_root"]), Path(inst["dev_root"])

        ok_xml(attach(fake, vid, inst["instance_id"], "/dev/sdg"), "AttachVolume")
        assert fake.volume(vid)["attachments"][0]["status"] == "attaching"
        att = fake.wait_attachment(vid, "attached")

        # The root disk is nvme0n1; ours is the next one.
        assert att["kernel_name"] == "nvme1n1"
        node = dev / "nvme1n1"
        st = node.stat()
        assert stat.S_ISBLK(st.st_mode)
        assert loop_backing(st.st_rdev) == str(image)
        block = sysfs / "class/block/nvme1n1"
        assert (block / "dev").read_text() == f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}\n"
        assert int((block / "size").read_text()) * 512 == GIB
        assert (block / "device/model").read_text() == "Amazon Elastic Block Store".ljust(40) + "\n"
        assert (block / "device/serial").read_text() == vid.replace("-", "").ljust(20) + "\n"
        assert (block / "holders").is_dir() and not list((block / "holders").iterdir())
        root_serial = (sysfs / "class/block/nvme0n1/device/serial").read_text().strip()
        assert root_serial == inst["root_volume_id"].replace("-", "")
        assert not (dev / "nvme0n1").exists()

        # The node is a real disk: mount it and read what make_image wrote.
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        lbtest.run(["mount", "-o", "nouuid", str(node), str(mnt)])
        try:
                assert (mnt / "logs/buffer.b1.log").read_bytes() == b"hello"
        finally:
                lbtest.run(["umount", str(mnt)])

        a = fake.ec2("DetachVolume", {"VolumeId": vid})
        assert ok_xml(a, "DetachVolume").findtext("ec2:status", namespaces=NS) == "detaching"
        fake.wait_volume(vid, "available")
        assert not node.exists()
        assert not block.exists() and not (sysfs / "block/nvme1n1").exists()
        assert loop_backing(st.st_rdev) != str(image)
        assert not [l for l in lbtest.loop_devices() if l["back-file"] == str(image)]


def test_detach_waits_while_mounted(fake, tmp_path):
        fake.config(detach_delay_ms=50)
        inst = fake.add_instance(buffer={"device": "/dev/sdf"})
        vid = inst["buffer_volume_id"]
        image = fake.volume(vid)["image"]
        lbtest.make_image(image, fs="ext4")     # the blank buffer, formatted in place
        node = Path(inst["dev_root"]) / "nvme1n1"
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        lbtest.run(["mount", str(node), str(mnt)])
        try:
                fake.ec2("DetachVolume", {"VolumeId": vid})
                fake.wait_attachment(vid, "busy")
                time.sleep(0.5)
                assert fake.volume(vid)["attachments"][0]["status"] == "busy"
                assert node.exists()
        finally:
                lbtest.run(["umount", str(mnt)])
        fake.wait_volume(vid, "available")
        assert not node.exists()


def test_detach_waits_while_another_mount_namespace_holds_it(fake, tmp_path):
        """A container's private copy of a mount keeps the device as busy as the host's (EBS
        detaches only once the OS lets go): unmounted on the host, still busy, and awscli sees
        the attachment "busy"; once the copy is gone it detaches."""
        fake.config(detach_delay_ms=50)
        inst = fake.add_instance(buffer={"device": "/dev/sdf"})
        vid = inst["buffer_volume_id"]
        lbtest.make_image(fake.volume(vid)["image"], fs="ext4")
        node = Path(inst["dev_root"]) / "nvme1n1"
        rdev = node.stat().st_rdev
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        lbtest.run(["mount", str(node), str(mnt)])
        holder = lbtest.NamespaceHolder()
        fake.children.append(holder.proc)
        try:
                lbtest.run(["umount", str(mnt)])
                assert [m for m in holder.mounts() if m["maj:min"] == f"{os.major(rdev)}:{os.minor(rdev)}"]
                fake.ec2("DetachVolume", {"VolumeId": vid})
                fake.wait_attachment(vid, "busy")
                out = aws_json(awscli(fake, tmp_path, "ec2", "describe-volumes", "--volume-ids", vid))
                assert out["Volumes"][0]["Attachments"][0]["State"] == "busy"
                assert out["Volumes"][0]["State"] == "in-use"
                time.sleep(0.5)
                assert fake.volume(vid)["attachments"][0]["status"] == "busy" and node.exists()
        finally:
                holder.stop()
        fake.wait_volume(vid, "available")
        assert not node.exists()


def test_detach_waits_while_a_lazily_detached_mount_is_in_use(fake, tmp_path):
        """Removing a mount point detaches the copies other namespaces hold (Linux >= 3.18),
        lazily: with a file open on one, no mount table shows the device any more, but it is
        still in use, and EBS would not let it go."""
        fake.config(detach_delay_ms=50)
        inst = fake.add_instance(buffer={"device": "/dev/sdf"})
        vid = inst["buffer_volume_id"]
        lbtest.make_image(fake.volume(vid)["image"], fs="ext4", files={"keep/open.txt": b"x"})
        node = Path(inst["dev_root"]) / "nvme1n1"
        rdev = node.stat().st_rdev
        devno = f"{os.major(rdev)}:{os.minor(rdev)}"
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        lbtest.run(["mount", str(node), str(mnt)])
        holder = lbtest.NamespaceHolder(open_file=mnt / "keep/open.txt")
        fake.children.append(holder.proc)
        try:
                lbtest.run(["umount", str(mnt)])
                mnt.rmdir()             # detaches the holder's copy, busy as it is
                assert not [m for m in holder.mounts() if m["maj:min"] == devno]
                fake.ec2("DetachVolume", {"VolumeId": vid})
                fake.wait_attachment(vid, "busy")
                time.sleep(0.5)
                assert fake.volume(vid)["attachments"][0]["status"] == "busy"
                holder.close_file()
                fake.wait_volume(vid, "available")
                assert holder.alive()
        finally:
                holder.stop()


def test_force_detach_of_mounted_volume(fake, tmp_path):
        fake.config(detach_delay_ms=50)
        inst = fake.add_instance(buffer={"device": "/dev/sdf"})
        vid = inst["buffer_volume_id"]
        lbtest.make_image(fake.volume(vid)["image"], fs="ext4")
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        lbtest.run(["mount", str(Path(inst["dev_root"]) / "nvme1n1"), str(mnt)])
        try:
                fake.ec2("DetachVolume", {"VolumeId": vid, "Force": "true"})
                fake.wait_volume(vid, "available")
        finally:
                lbtest.run(["umount", str(mnt)])


def test_xen_device_style(fake):
        inst = fake.add_instance(device_style="xen", buffer={"device": "/dev/sdf", "size_gib": 2})
        sysfs, dev = Path(inst["sysfs_root"]), Path(inst["dev_root"])
        node = dev / "xvdf"
        assert stat.S_ISBLK(node.stat().st_mode)
        assert int((sysfs / "block/xvdf/size").read_text()) * 512 == 2 * GIB
        assert (sysfs / "block/xvdf/dev").read_text().strip() == \
                f"{os.major(node.stat().st_rdev)}:{os.minor(node.stat().st_rdev)}"
        assert (sysfs / "block/xvda").exists() and not (dev / "xvda").exists()
        vid = fake.add_volume()
        ok_xml(attach(fake, vid, inst["instance_id"], "/dev/xvdg"), "AttachVolume")
        fake.wait_attachment(vid, "attached")
        assert stat.S_ISBLK((dev / "xvdg").stat().st_mode)


def test_attach_errors(fake):
        inst = fake.add_instance(availability_zone="us-east-1a", attachment_slots=3, buffer={"device": "/dev/sdf"})
        iid = inst["instance_id"]
        other_az = fake.add_volume(availability_zone="us-east-1b")
        creating = fake.add_volume(state="creating")
        free = fake.add_volume()

        cases = [
                (attach(fake, "vol-0123456789abcdef0", iid), "InvalidVolume.NotFound"),
                (attach(fake, free, "i-0123456789abcdef0"), "InvalidInstanceID.NotFound"),
                (attach(fake, other_az, iid), "InvalidVolume.ZoneMismatch"),
                (attach(fake, inst["buffer_volume_id"], iid, "/dev/sdg"), "VolumeInUse"),
                (attach(fake, creating, iid), "IncorrectState"),
                (attach(fake, free, iid, "/dev/xvdf"), "InvalidParameterValue"),   # same slot as /dev/sdf
                (attach(fake, free, iid, "/dev/sda1"), "InvalidParameterValue"),   # the root's slot
                (attach(fake, free, iid, "/dev/hdq"), "InvalidParameterValue"),
        ]
        for answer, code in cases:
                assert answer.status == 400, answer.text
                assert error_code(answer) == code
        msg = ET.fromstring(attach(fake, free, iid, "/dev/xvdf").body).findtext("Errors/Error/Message")
        assert msg == "Attachment point /dev/xvdf is already in use"

        ok_xml(attach(fake, free, iid, "/dev/sdg"), "AttachVolume")       # the third slot
        last = fake.add_volume()
        assert error_code(attach(fake, last, iid, "/dev/sdh")) == "AttachmentLimitExceeded"


def test_attach_race_has_one_winner(fake):
        instances = [fake.add_instance()["instance_id"] for _ in range(8)]
        vid = fake.add_volume()
        barrier = threading.Barrier(len(instances))
        answers: dict[str, lbtest.HttpAnswer] = {}

        def racer(iid: str) -> None:
                barrier.wait()
                answers[iid] = attach(fake, vid, iid, "/dev/sdf")

        threads = [threading.Thread(target=racer, args=(i,)) for i in instances]
        for t in threads:
                t.start()
        for t in threads:
                t.join()

        winners = [iid for iid, a in answers.items() if a.status == 200]
        assert len(winners) == 1, {i: a.text for i, a in answers.items()}
        for iid, a in answers.items():
                if iid not in winners:
                        assert a.status == 400 and error_code(a) in ("VolumeInUse", "IncorrectState")
        att = fake.wait_attachment(vid, "attached")
        assert att["instance_id"] == winners[0]
        assert len(fake.volume(vid)["attachments"]) == 1


def test_terminate(fake):
        inst = fake.add_instance(buffer={"device": "/dev/sdf"})
        iid = inst["instance_id"]
        keep = fake.add_volume()
        ok_xml(attach(fake, keep, iid, "/dev/sdg"), "AttachVolume")
        fake.wait_attachment(keep, "attached")
        buf = fake.volume(inst["buffer_volume_id"])
        loops = [buf["attachments"][0]["loop"], fake.volume(keep)["attachments"][0]["loop"]]

        result = fake.terminate(iid)

        assert set(result["deleted"]) == {inst["buffer_volume_id"], inst["root_volume_id"]}
        assert result["detached"] == [keep]
        assert fake.volume(inst["buffer_volume_id"])["state"] == "deleted"
        assert not os.path.exists(buf["image"])
        assert fake.volume(keep)["state"] == "available"
        assert not list(Path(inst["dev_root"]).iterdir())
        names = {l["name"] for l in lbtest.loop_devices()}
        assert not names & set(loops)
        a = fake.ec2("DescribeVolumes", {"VolumeId.1": inst["buffer_volume_id"]})
        assert error_code(a) == "InvalidVolume.NotFound"
        assert error_code(attach(fake, keep, iid)) == "IncorrectInstanceState"


def test_delete_on_termination_off_keeps_the_buffer(fake):
        inst = fake.add_instance(buffer={"device": "/dev/sdf"})
        ok_xml(fake.ec2("ModifyInstanceAttribute", {
                "InstanceId": inst["instance_id"],
                "BlockDeviceMapping.1.DeviceName": "/dev/sdf",
                "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "false"}), "ModifyInstanceAttribute")
        fake.terminate(inst["instance_id"])
        v = fake.volume(inst["buffer_volume_id"])
        assert v["state"] == "available" and os.path.exists(v["image"])


# --------------------------------------------------------------------------
# EC2 faults
# --------------------------------------------------------------------------

def test_ec2_faults(fake):
        inst = fake.add_instance()
        vid = fake.add_volume()

        fake.fault(action="*", kind="5xx", count=2)
        assert [fake.ec2("DescribeVolumes").status for _ in range(3)] == [500, 500, 200]
        fake.fault(action="DescribeVolumes", kind="5xx", status=503)
        assert error_code(fake.ec2("DescribeVolumes")) == "Server.Unavailable"

        fake.fault(action="DescribeVolumes", kind="drop")
        with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
                fake.ec2("DescribeVolumes")
        fake.fault(action="DescribeVolumes", kind="truncate")
        with pytest.raises(http.client.IncompleteRead):
                fake.ec2("DescribeVolumes")
        fake.fault(action="DescribeVolumes", kind="malformed")
        a = fake.ec2("DescribeVolumes")
        assert a.status == 200
        with pytest.raises(ET.ParseError):
                ET.fromstring(a.body)

        fake.fault(action="DescribeVolumes", kind="latency", latency_ms=300)
        t0 = time.monotonic()
        assert fake.ec2("DescribeVolumes").status == 200
        assert time.monotonic() - t0 >= 0.3

        # The action happened although the answer says it did not (aws-sdk-java #1623).
        fake.fault(action="AttachVolume", kind="5xx_after_success")
        a = attach(fake, vid, inst["instance_id"])
        assert (a.status, error_code(a)) == (500, "InternalError")
        assert fake.volume(vid)["attachments"][0]["instance_id"] == inst["instance_id"]
        assert error_code(attach(fake, vid, inst["instance_id"])) == "VolumeInUse"
        assert fake.faults() == []


def test_client_giving_up_is_not_an_error(fake):
        """A client timing out during injected latency is normal, not a fake bug: the
        fixture fails tests whose fake printed a traceback."""
        inst = fake.add_instance()
        fake.fault(action="DescribeVolumes", kind="latency", latency_ms=800)
        with pytest.raises((TimeoutError, urllib.error.URLError)):
                fake.ec2("DescribeVolumes", timeout=0.2)
        fake.fault(action="imds", kind="latency", latency_ms=800)
        with pytest.raises((TimeoutError, urllib.error.URLError)):
                lbtest.http("PUT", fake.imds_url(inst, "/latest/api/token"),
                            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}, timeout=0.2)
        time.sleep(1)
        assert fake.ec2("DescribeVolumes").status == 200


def test_stuck_attach_and_latency_config(fake):
        inst = fake.add_instance()
        vid = fake.add_volume()
        fake.config(stuck_attach=[vid], attach_delay_ms=0, ec2_latency_ms=100)
        t0 = time.monotonic()
        ok_xml(attach(fake, vid, inst["instance_id"]), "AttachVolume")
        assert time.monotonic() - t0 >= 0.1
        time.sleep(0.4)
        assert fake.volume(vid)["attachments"][0]["status"] == "attaching"
        # The CSI driver's way out: detach the stuck attachment.
        ok_xml(fake.ec2("DetachVolume", {"VolumeId": vid, "InstanceId": inst["instance_id"]}), "DetachVolume")
        fake.wait_volume(vid, "available")


# --------------------------------------------------------------------------
# the process and the helpers
# --------------------------------------------------------------------------

def test_sigterm_detaches_everything(tmp_path):
        f = lbtest.FakeAWS.start(tmp_path / "own")
        try:
                inst = f.add_instance(buffer={"device": "/dev/sdf"})
                vid = f.add_volume()
                attach(f, vid, inst["instance_id"])
                f.wait_attachment(vid, "attached")
                images = {v["image"] for v in f.volumes() if v["image"]}
                assert len([l for l in lbtest.loop_devices() if l["back-file"] in images]) == 2
        finally:
                assert f.stop() == []
        assert not [l for l in lbtest.loop_devices() if l["back-file"] in images]
        assert not list(Path(inst["dev_root"]).iterdir())
        assert "stopped" in f.log_path.read_text()


def test_make_image_round_trip(tmp_path):
        files = {"a.txt": b"A", "dir/b.log": b"B" * 5000}
        for fs in ("xfs", "ext4"):
                img = lbtest.make_image(tmp_path / f"{fs}.img", fs=fs, files=files,
                                        uuid="0b1e5e9a-1b2c-4d5e-8f90-123456789abc")
                assert img.stat().st_size == GIB
                assert img.stat().st_blocks * 512 < 200 << 20, "sparse"
                assert lbtest.image_files(img) == files
                uuid = lbtest.run(["blkid", "-p", "-o", "value", "-s", "UUID", str(img)]).stdout.strip()
                assert uuid == "0b1e5e9a-1b2c-4d5e-8f90-123456789abc"
        assert lbtest.leftovers_under(tmp_path) == {"mounts": [], "loops": []}


def test_env_for(fake):
        inst = fake.add_instance()
        env = fake.env_for(inst)
        assert env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == inst["imds_endpoint"]
        assert env["AWS_ENDPOINT_URL_EC2"] == fake.ec2_endpoint
        assert env["AWS_ACCESS_KEY_ID"] == lbtest.STATIC_ACCESS_KEY
        assert env["LIFEBOAT_SYSFS_ROOT"] == inst["sysfs_root"]
        assert env["LIFEBOAT_GROUP"] == "test-group"
        assert not os.path.exists(env["LIFEBOAT_CONFIG"])
        assert Path(env["LIFEBOAT_FLUENTD_TEMPLATE"]).is_file()
        assert set(env) - {"PATH", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"} <= {k for k in env if k.startswith(("AWS_", "LIFEBOAT_"))}
        for k in ("LIFEBOAT_RUN_DIR", "LIFEBOAT_BUFFER_MOUNT", "LIFEBOAT_RECOVERY_ROOT", "LIFEBOAT_FLUENTD_CONF_DIR",
                  "LIFEBOAT_STATE_DIR"):
                assert env[k].startswith(str(fake.workdir) + "/instances/" + inst["instance_id"])
        role_env = fake.env_for(inst, use_role=True)
        assert "AWS_ACCESS_KEY_ID" not in role_env and "AWS_SECRET_ACCESS_KEY" not in role_env


# --------------------------------------------------------------------------
# Auto Scaling: groups, termination hooks, the wait of a scale-in
# --------------------------------------------------------------------------

AS_NS = {"as": "http://autoscaling.amazonaws.com/doc/2011-01-01/"}


def as_error(answer: lbtest.HttpAnswer) -> tuple[str, str, str]:
        """(Type, Code, Message) of an awsquery ErrorResponse."""
        root = ET.fromstring(answer.body)
        assert root.tag == f"{{{AS_NS['as']}}}ErrorResponse", answer.text
        assert root.findtext("as:RequestId", namespaces=AS_NS)
        return tuple(root.findtext(f"as:Error/as:{k}", namespaces=AS_NS) for k in ("Type", "Code", "Message"))


def scale_in_group(fake, heartbeat_timeout: int = 30, **hook: object) -> tuple[str, dict]:
        inst = fake.add_instance()
        fake.add_group("ads-spot", [inst["instance_id"]],
                       [{"name": "lifeboat-drain", "heartbeat_timeout": heartbeat_timeout, "default_result": "CONTINUE",
                         **hook}])
        return inst["instance_id"], inst


def test_awscli_lifecycle_hooks(fake, tmp_path):
        inst = fake.add_instance()
        iid = inst["instance_id"]
        fake.add_group("ads-spot", [iid])
        assert awscli(fake, tmp_path, "autoscaling", "put-lifecycle-hook", "--lifecycle-hook-name", "lifeboat-drain",
                      "--auto-scaling-group-name", "ads-spot", "--lifecycle-transition",
                      "autoscaling:EC2_INSTANCE_TERMINATING", "--heartbeat-timeout", "300",
                      "--default-result", "CONTINUE").returncode == 0
        # Updating keeps what is not given.
        assert awscli(fake, tmp_path, "autoscaling", "put-lifecycle-hook", "--lifecycle-hook-name", "lifeboat-drain",
                      "--auto-scaling-group-name", "ads-spot", "--heartbeat-timeout", "120").returncode == 0
        out = aws_json(awscli(fake, tmp_path, "autoscaling", "describe-lifecycle-hooks", "--auto-scaling-group-name",
                              "ads-spot", "--lifecycle-hook-names", "lifeboat-drain"))
        assert out["LifecycleHooks"] == [{
                "LifecycleHookName": "lifeboat-drain", "AutoScalingGroupName": "ads-spot",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "HeartbeatTimeout": 120,
                "GlobalTimeout": 12000, "DefaultResult": "CONTINUE"}]

        # AWS's own limits on PutLifecycleHook (the control API may go below them).
        r = awscli(fake, tmp_path, "autoscaling", "put-lifecycle-hook", "--lifecycle-hook-name", "x",
                   "--auto-scaling-group-name", "ads-spot", "--lifecycle-transition",
                   "autoscaling:EC2_INSTANCE_TERMINATING", "--heartbeat-timeout", "29")
        assert r.returncode == 254 and "ValidationError" in r.stderr, r.stderr
        r = awscli(fake, tmp_path, "autoscaling", "describe-lifecycle-hooks", "--auto-scaling-group-name", "nope")
        assert r.returncode == 254 and "ValidationError" in r.stderr and "AutoScalingGroup name not found" in r.stderr

        out = aws_json(awscli(fake, tmp_path, "autoscaling", "describe-auto-scaling-instances", "--instance-ids", iid,
                              "i-0000000000000beef"))
        assert out["AutoScalingInstances"] == [{
                "InstanceId": iid, "InstanceType": "m5.large", "AutoScalingGroupName": "ads-spot",
                "AvailabilityZone": inst["availability_zone"], "LifecycleState": "InService", "HealthStatus": "HEALTHY",
                "ProtectedFromScaleIn": False}]
        other = fake.add_instance()
        out = aws_json(awscli(fake, tmp_path, "autoscaling", "describe-auto-scaling-instances", "--instance-ids",
                              other["instance_id"]))
        assert out["AutoScalingInstances"] == [], "an instance in no group is an empty list, not an error"


def test_awscli_scale_in_waits_for_the_hook(fake, tmp_path):
        iid, _ = scale_in_group(fake)
        assert fake.imds(iid, "/latest/meta-data/autoscaling/target-lifecycle-state").text == "InService"
        # Nothing waits yet.
        r = awscli(fake, tmp_path, "autoscaling", "complete-lifecycle-action", "--lifecycle-hook-name", "lifeboat-drain",
                   "--auto-scaling-group-name", "ads-spot", "--lifecycle-action-result", "CONTINUE", "--instance-id", iid)
        assert r.returncode == 254, r.stderr
        assert f"ValidationError) when calling the CompleteLifecycleAction operation: No active Lifecycle Action found " \
               f"with instance ID {iid}" in r.stderr, r.stderr

        fake.scale_in("ads-spot", iid)
        assert fake.imds(iid, "/latest/meta-data/autoscaling/target-lifecycle-state").text == "Terminated"
        out = aws_json(awscli(fake, tmp_path, "autoscaling", "describe-auto-scaling-instances", "--instance-ids", iid))
        assert out["AutoScalingInstances"][0]["LifecycleState"] == "Terminating:Wait"
        # awscli needs the (empty) Result element of both.
        r = awscli(fake, tmp_path, "autoscaling", "record-lifecycle-action-heartbeat", "--lifecycle-hook-name",
                   "lifeboat-drain", "--auto-scaling-group-name", "ads-spot", "--instance-id", iid)
        assert r.returncode == 0 and r.stdout.strip() == "", r.stderr
        assert fake.instance(iid)["state"] == "running"
        r = awscli(fake, tmp_path, "autoscaling", "complete-lifecycle-action", "--lifecycle-hook-name", "lifeboat-drain",
                   "--auto-scaling-group-name", "ads-spot", "--lifecycle-action-result", "CONTINUE", "--instance-id", iid)
        assert r.returncode == 0, r.stderr

        g = fake.group("ads-spot")
        [m] = g["instances"]
        [a] = m["actions"]
        assert (m["lifecycle_state"], a["result"], a["ended_by"], len(a["heartbeats"])) == \
               ("Terminated", "CONTINUE", "complete", 1)
        assert m["terminated_at"] >= a["ended_at"]
        assert fake.instance(iid)["state"] == "terminated"
        assert awscli(fake, tmp_path, "autoscaling", "record-lifecycle-action-heartbeat", "--lifecycle-hook-name",
                      "lifeboat-drain", "--auto-scaling-group-name", "ads-spot", "--instance-id",
                      iid).returncode == 254
        assert [q["service"] for q in fake.requests(action="CompleteLifecycleAction")] == ["autoscaling"] * 2


def test_hook_timeouts_take_the_default_result(fake):
        iid, _ = scale_in_group(fake, heartbeat_timeout=1, default_result="ABANDON")
        fake.scale_in("ads-spot", iid)
        time.sleep(0.6)
        assert fake.autoscaling("RecordLifecycleActionHeartbeat", {"LifecycleHookName": "lifeboat-drain",
                                                                   "AutoScalingGroupName": "ads-spot",
                                                                   "InstanceId": iid}).status == 200
        time.sleep(0.6)
        assert fake.group("ads-spot")["instances"][0]["lifecycle_state"] == "Terminating:Wait", "the heartbeat extended it"
        lbtest.wait_for("the heartbeat timeout", lambda: fake.group("ads-spot")["instances"][0]["terminated_at"], 3)
        [a] = fake.group("ads-spot")["instances"][0]["actions"]
        assert (a["result"], a["ended_by"]) == ("ABANDON", "heartbeat-timeout")
        assert a["ended_at"] == pytest.approx(a["heartbeats"][0] + 1, abs=0.01)

        # The global timeout ends the wait whatever the heartbeats.
        other = fake.add_instance()["instance_id"]
        fake.add_group("g2", [other], [{"name": "h", "heartbeat_timeout": 1, "global_timeout": 2,
                                        "default_result": "CONTINUE"}])
        fake.scale_in("g2", other)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
                fake.autoscaling("RecordLifecycleActionHeartbeat", {"LifecycleHookName": "h",
                                                                    "AutoScalingGroupName": "g2", "InstanceId": other})
                time.sleep(0.3)
        [a] = fake.group("g2")["instances"][0]["actions"]
        assert (a["result"], a["ended_by"]) == ("CONTINUE", "global-timeout")
        assert fake.instance(other)["state"] == "terminated"


def test_abandon_skips_the_other_hooks(fake):
        iid, _ = scale_in_group(fake)
        fake.control("POST", "autoscaling/groups/ads-spot/hooks", {"name": "ecs-managed-draining-termination-hook",
                                                                    "heartbeat_timeout": 3600})
        fake.scale_in("ads-spot", iid)
        base = {"AutoScalingGroupName": "ads-spot", "InstanceId": iid}
        assert fake.autoscaling("CompleteLifecycleAction", {**base, "LifecycleHookName": "lifeboat-drain",
                                                            "LifecycleActionResult": "CONTINUE"}).status == 200
        assert fake.group("ads-spot")["instances"][0]["lifecycle_state"] == "Terminating:Wait", "ECS's hook still waits"
        assert fake.autoscaling("CompleteLifecycleAction", {**base, "LifecycleHookName": "lifeboat-drain",
                                                            "LifecycleActionResult": "CONTINUE"}).status == 400
        assert fake.autoscaling("CompleteLifecycleAction", {**base, "LifecycleHookName": "ecs-managed-draining-termination-hook",
                                                            "LifecycleActionResult": "CONTINUE"}).status == 200
        assert fake.instance(iid)["state"] == "terminated"

        other = fake.add_instance()["instance_id"]
        fake.control("POST", "autoscaling/groups/ads-spot/instances", {"instance_id": other})
        fake.scale_in("ads-spot", other)
        base["InstanceId"] = other
        assert fake.autoscaling("CompleteLifecycleAction", {**base, "LifecycleHookName": "lifeboat-drain",
                                                            "LifecycleActionResult": "ABANDON"}).status == 200
        m = [m for m in fake.group("ads-spot")["instances"] if m["instance_id"] == other][0]
        assert m["lifecycle_state"] == "Terminated"
        assert sorted((a["hook"], a["ended_by"]) for a in m["actions"]) == [
                ("ecs-managed-draining-termination-hook", "abandoned"), ("lifeboat-drain", "complete")]


def test_autoscaling_wire_format(fake):
        iid, _ = scale_in_group(fake)
        fake.scale_in("ads-spot", iid)
        a = fake.autoscaling("RecordLifecycleActionHeartbeat", {"LifecycleHookName": "lifeboat-drain",
                                                                "AutoScalingGroupName": "ads-spot", "InstanceId": iid})
        root = ET.fromstring(a.body)
        assert root.tag == f"{{{AS_NS['as']}}}RecordLifecycleActionHeartbeatResponse"
        assert root.find("as:RecordLifecycleActionHeartbeatResult", AS_NS) is not None
        assert root.findtext("as:ResponseMetadata/as:RequestId", namespaces=AS_NS)

        base = {"AutoScalingGroupName": "ads-spot", "InstanceId": iid}
        a = fake.autoscaling("CompleteLifecycleAction", {**base, "LifecycleHookName": "lifeboat drain",
                                                         "LifecycleActionResult": "CONTINUE"})
        assert a.status == 400 and as_error(a)[:2] == ("Sender", "ValidationError")
        a = fake.autoscaling("CompleteLifecycleAction", {**base, "LifecycleHookName": "lifeboat-drain",
                                                         "LifecycleActionResult": "MAYBE"})
        assert a.status == 400 and as_error(a)[1] == "ValidationError"
        a = fake.autoscaling("CompleteLifecycleAction", {"LifecycleHookName": "lifeboat-drain",
                                                         "AutoScalingGroupName": "ads-spot",
                                                         "LifecycleActionResult": "CONTINUE"})
        assert as_error(a)[2] == "Either InstanceId or LifecycleActionToken must be specified"
        a = fake.autoscaling("CompleteLifecycleAction", {**base, "LifecycleActionResult": "CONTINUE"})
        assert "Value null at 'lifecycleHookName'" in as_error(a)[2]
        # By token, as the SQS notification would give it.
        token = fake.group("ads-spot")["instances"][0]["actions"][0]["token"]
        a = fake.autoscaling("CompleteLifecycleAction", {"LifecycleHookName": "lifeboat-drain",
                                                         "AutoScalingGroupName": "ads-spot", "LifecycleActionToken": token,
                                                         "LifecycleActionResult": "CONTINUE"})
        assert a.status == 200, a.text
        a = fake.autoscaling("CompleteLifecycleAction", {"LifecycleHookName": "lifeboat-drain",
                                                         "AutoScalingGroupName": "ads-spot", "LifecycleActionToken": token,
                                                         "LifecycleActionResult": "CONTINUE"})
        assert as_error(a) == ("Sender", "ValidationError", f"No active Lifecycle Action found with token {token}")

        # The service is the credential scope's: an Auto Scaling action signed for ec2 is EC2's to refuse.
        a = fake.ec2("DescribeAutoScalingInstances", {"InstanceIds.member.1": iid})
        assert a.status == 400 and error_code(a) == "InvalidAction"
        # Throttling and server errors in the awsquery shape.
        fake.fault(action="DescribeAutoScalingInstances", kind="throttle")
        fake.fault(action="DescribeAutoScalingInstances", kind="5xx", status=503)
        a = fake.autoscaling("DescribeAutoScalingInstances", {"InstanceIds.member.1": iid})
        assert a.status == 400 and as_error(a) == ("Sender", "Throttling", "Rate exceeded")
        a = fake.autoscaling("DescribeAutoScalingInstances", {"InstanceIds.member.1": iid})
        assert a.status == 503 and as_error(a)[0] == "Receiver"


def test_awscli_rides_out_autoscaling_throttling(fake, tmp_path):
        iid, _ = scale_in_group(fake)
        fake.fault(action="DescribeAutoScalingInstances", kind="throttle")
        out = aws_json(awscli(fake, tmp_path, "autoscaling", "describe-auto-scaling-instances", "--instance-ids", iid))
        assert out["AutoScalingInstances"][0]["InstanceId"] == iid
        assert [q["status"] for q in fake.requests(action="DescribeAutoScalingInstances")] == [400, 200]


def test_imds_instance_tags(fake):
        plain = fake.add_instance(tags={"team": "ads"})
        tagged = fake.add_instance(tags={"team": "ads", "a/b": "hidden"}, metadata_tags=True)
        fake.add_group("ads-spot", [plain["instance_id"], tagged["instance_id"]])
        path = "/latest/meta-data/tags/instance/aws:autoscaling:groupName"
        assert fake.imds(plain, path).status == 404, "instance metadata tags are off by default"
        assert fake.imds(tagged, path).text == "ads-spot"
        assert fake.imds(tagged, "/latest/meta-data/tags/instance/team").text == "ads"
        assert sorted(fake.imds(tagged, "/latest/meta-data/tags/instance").text.split("\n")) == \
               ["aws:autoscaling:groupName", "team"]


# --------------------------------------------------------------------------
# STS AssumeRoleWithWebIdentity and the container credentials endpoint
# --------------------------------------------------------------------------

STS_NS = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/"}
ROLE = "arn:aws:iam::123456789012:role/lifeboat-reaper"


def sts_cli(fake, tmp_path, token: str, role: str = ROLE, session: str = "s1"):
        """Debian's awscli: the call goes out unsigned (botocore disables signing for it)."""
        return awscli(fake, tmp_path, "sts", "assume-role-with-web-identity", "--role-arn", role,
                      "--role-session-name", session, "--web-identity-token", token, access_key="",
                      extra_env={"AWS_MAX_ATTEMPTS": "1"})


def sts_post(fake, params: dict[str, str]) -> lbtest.HttpAnswer:
        body = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params.items()).encode()
        return lbtest.http("POST", fake.sts_endpoint + "/", body,
                           {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def test_awscli_assume_role_with_web_identity(fake, tmp_path):
        fake.web_identity("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", [ROLE], subject="system:serviceaccount:ops:reap")
        out = aws_json(sts_cli(fake, tmp_path, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"))
        creds = out["Credentials"]
        assert creds["AccessKeyId"].startswith("ASIA") and creds["SecretAccessKey"] and creds["SessionToken"]
        expiration = dt.datetime.fromisoformat(creds["Expiration"].replace("Z", "+00:00"))
        left = (expiration - dt.datetime.now(dt.timezone.utc)).total_seconds()
        assert 3500 < left <= 3600, "STS's default duration is an hour"
        assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::123456789012:assumed-role/lifeboat-reaper/s1"
        assert out["SubjectFromWebIdentityToken"] == "system:serviceaccount:ops:reap"
        [req] = fake.requests(service="sts")
        assert req["action"] == "AssumeRoleWithWebIdentity" and req["instance"] is None and req["status"] == 200

        # What STS hands out is what the SigV4 verifier accepts, with the token.
        described = awscli(fake, tmp_path, "ec2", "describe-volumes", access_key=creds["AccessKeyId"],
                           secret_key=creds["SecretAccessKey"], session_token=creds["SessionToken"])
        assert described.returncode == 0, described.stderr
        [call] = fake.requests(action="DescribeVolumes")
        assert call["instance"] == creds["AccessKeyId"] and call["status"] == 200
        [logged] = fake.sts_calls()
        assert logged["result"] == "ok" and logged["session_name"] == "s1" and logged["role_arn"] == ROLE
        assert logged["access_key_id"] == creds["AccessKeyId"]


def test_awscli_sts_errors(fake, tmp_path):
        fake.web_identity("token-good-0001", [ROLE])
        fake.web_identity("token-expired-01", [ROLE], expired=True)
        for token, role, code in [("token-unknown-1", ROLE, "InvalidIdentityToken"),
                                  ("token-expired-01", ROLE, "ExpiredTokenException"),
                                  ("token-good-0001", "arn:aws:iam::123456789012:role/other", "AccessDenied")]:
                r = sts_cli(fake, tmp_path, token, role)
                assert r.returncode == 254, (code, r.stdout, r.stderr)
                assert f"An error occurred ({code}) when calling the AssumeRoleWithWebIdentity operation" in r.stderr
        assert [c["result"] for c in fake.sts_calls()] == ["InvalidIdentityToken", "ExpiredTokenException",
                                                           "AccessDenied"]
        assert [r["status"] for r in fake.requests(service="sts")] == [400, 400, 403]


def test_sts_answer_and_error_shapes(fake):
        fake.web_identity("token-shape-001", [ROLE])
        # A token file read as it is ends in a line break; STS takes it (EKS tokens work).
        a = sts_post(fake, {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE,
                            "RoleSessionName": "shape", "WebIdentityToken": "token-shape-001\n",
                            "DurationSeconds": "900"})
        assert a.status == 200, a.text
        root = ET.fromstring(a.body)
        assert root.tag == "{%s}AssumeRoleWithWebIdentityResponse" % STS_NS["sts"]
        assert root.findtext("sts:ResponseMetadata/sts:RequestId", namespaces=STS_NS)
        c = root.find("sts:AssumeRoleWithWebIdentityResult/sts:Credentials", STS_NS)
        assert c is not None and c.findtext("sts:AccessKeyId", namespaces=STS_NS).startswith("ASIA")
        expiration = dt.datetime.strptime(c.findtext("sts:Expiration", namespaces=STS_NS), "%Y-%m-%dT%H:%M:%SZ")
        left = (expiration.replace(tzinfo=dt.timezone.utc) - dt.datetime.now(dt.timezone.utc)).total_seconds()
        assert 800 < left <= 900, "DurationSeconds is honoured"
        assert fake.sts_calls()[0]["token"] == "token-shape-001\n"

        for params, status, code in [
                ({"RoleArn": ROLE, "RoleSessionName": "x y", "WebIdentityToken": "token-shape-001"}, 400,
                 "ValidationError"),
                ({"RoleArn": ROLE, "RoleSessionName": "ok"}, 400, "ValidationError"),
                ({"RoleArn": ROLE, "RoleSessionName": "ok", "WebIdentityToken": "token-shape-001",
                  "DurationSeconds": "60"}, 400, "ValidationError"),
                ({"RoleArn": ROLE, "RoleSessionName": "ok", "WebIdentityToken": "nope-nope"}, 400,
                 "InvalidIdentityToken"),
        ]:
                a = sts_post(fake, {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", **params})
                assert a.status == status, (params, a.text)
                root = ET.fromstring(a.body)
                assert root.tag == "{%s}ErrorResponse" % STS_NS["sts"], a.text
                assert root.findtext("sts:Error/sts:Type", namespaces=STS_NS) == "Sender"
                assert root.findtext("sts:Error/sts:Code", namespaces=STS_NS) == code
                assert root.findtext("sts:Error/sts:Message", namespaces=STS_NS)
                assert root.findtext("sts:RequestId", namespaces=STS_NS)
        # A signed request goes to the service of its scope; EC2 actions still want a signature.
        a = sts_post(fake, {"Action": "DescribeVolumes", "Version": "2016-11-15"})
        assert (a.status, error_code(a)) == (401, "MissingAuthenticationToken")


def test_awscli_uses_container_credentials(fake, tmp_path):
        """Debian's botocore (2.0.0dev155) fetches from AWS_CONTAINER_CREDENTIALS_FULL_URI on
        127.0.0.1 with AWS_CONTAINER_AUTHORIZATION_TOKEN, parses the answer and signs with it."""
        role = fake.container_role(token="pod-identity-token")
        r = awscli(fake, tmp_path, "ec2", "describe-volumes", access_key="",
                   extra_env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": role["url"],
                              "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pod-identity-token"})
        assert r.returncode == 0, r.stderr
        [served] = fake.container_roles()[0]["served"]
        [call] = fake.requests(action="DescribeVolumes")
        assert call["instance"] == served and call["status"] == 200
        [got] = fake.requests(service="container")
        assert got["action"] == role["path"] and got["status"] == 200 and got["instance"] == served


def test_container_endpoint(fake):
        open_role = fake.container_role(path="/v2/credentials/0b5c7d21-task", role_arn="arn:aws:iam::123456789012:role/task")
        a = lbtest.http("GET", open_role["url"])
        assert a.status == 200 and a.headers["Content-Type"] == "application/json"
        doc = json.loads(a.body)
        assert list(doc) == ["RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"]
        assert doc["RoleArn"] == "arn:aws:iam::123456789012:role/task"
        dt.datetime.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
        # The same credentials until shortly before they expire, as the agents do.
        assert json.loads(lbtest.http("GET", open_role["url"]).body)["AccessKeyId"] == doc["AccessKeyId"]
        assert fake.ec2("DescribeVolumes", access_key=doc["AccessKeyId"], secret_key=doc["SecretAccessKey"],
                        token=doc["Token"]).status == 200

        unknown = lbtest.http("GET", fake.container_endpoint + "/v2/credentials/nope")
        assert unknown.status == 400
        assert json.loads(unknown.body) == {"code": "InvalidIdInRequest", "message": "CredentialsV2Request: ID not found"}

        guarded = fake.container_role(path="/v1/credentials", token="secret-token")
        assert lbtest.http("GET", guarded["url"]).status == 400
        assert lbtest.http("GET", guarded["url"], headers={"Authorization": "other"}).status == 403
        assert lbtest.http("GET", guarded["url"], headers={"Authorization": "secret-token"}).status == 200

        fake.fault(action="container", kind="5xx", count=1)
        fake.fault(action="container", kind="malformed", count=1)
        a = lbtest.http("GET", open_role["url"])
        assert a.status == 500 and json.loads(a.body)["code"] == "InternalServerError"
        a = lbtest.http("GET", open_role["url"])
        assert a.status == 200
        with pytest.raises(json.JSONDecodeError):
                json.loads(a.body)
        faulted = [r.get("fault") for r in fake.requests(service="container")][-2:]
        assert faulted == ["5xx", "malformed"]

        fake.config(container_credential_ttl_s=200)   # within the agents' 5 minutes: new ones each time
        short = fake.container_role()
        assert short["path"].startswith("/v2/credentials/")
        first = json.loads(lbtest.http("GET", short["url"]).body)
        second = json.loads(lbtest.http("GET", short["url"]).body)
        assert first["AccessKeyId"] != second["AccessKeyId"]
        assert fake.container_roles()[-1]["served"] == [first["AccessKeyId"], second["AccessKeyId"]]
