# SPDX-License-Identifier: MIT
"""lifeboat reap --relocate against the fake AWS: a dirty volume stranded in a zone where the
group no longer runs is moved, through a snapshot, to a zone where it does, and recovered there
by boot; several reapers at once, reapers killed after each step, and the cases where nothing
may move. The fake's snapshots are real copies of the volume images, so the chunks are compared
byte for byte."""

from __future__ import annotations

import json
import subprocess
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any, Callable

import pytest

import lbtest
from lbtest import image_files, mount_of, run_lifeboat

GROUP = "test-group"
AZ_A, AZ_B, AZ_C = "us-east-1a", "us-east-1b", "us-east-1c"
DEAD_OWNER = "i-0dead0000beef0001"
EXIT_OK, EXIT_PARTIAL, EXIT_ATTENTION = 0, 1, 4
CREATING = ("CreateSnapshot", "CreateVolume", "CreateTags", "DeleteTags", "DeleteSnapshot", "DeleteVolume")


def chunk_files(n: int) -> dict[str, bytes]:
        files = {}
        for i in range(n):
                files[f"s3/buffer.b5f0123456789abcdef0123456789{i:04x}.log"] = f"record {i}\n".encode() * 500
                files[f"s3/buffer.b5f0123456789abcdef0123456789{i:04x}.log.meta"] = b"\x85meta"
        return files


def reap_env(fake: lbtest.FakeAWS, tmp_path: Path, **settings: str) -> dict[str, str]:
        return lbtest.reap_env(fake, tmp_path, GROUP, **settings)


def running_instance(fake: lbtest.FakeAWS, az: str) -> dict[str, Any]:
        """An instance of the group: its buffer volume is in use (what tells reap the group lives in az)."""
        return fake.add_instance(availability_zone=az, buffer={"tags": lbtest.group_tags(GROUP, "dirty", "i-live")})


def stranded(fake: lbtest.FakeAWS, tmp_path: Path, name: str, az: str = AZ_B,
             files: dict[str, bytes] | None = None) -> tuple[str, Path, str]:
        """A dirty volume of a dead instance, available in az for two hours: (id, image, fs uuid)."""
        image = tmp_path / "images" / f"{name}.img"
        vid, fs_uuid = fake.add_orphan(image, GROUP, DEAD_OWNER, "xfs", files or chunk_files(2),
                                       extra_tags={"lifeboat:available-since": lbtest.iso_in(-7200)},
                                       availability_zone=az)
        return vid, image, fs_uuid


reap_json = lbtest.reap_json


by_id = lbtest.volumes_by_id


def copies_of(fake: lbtest.FakeAWS, source: str) -> list[dict[str, Any]]:
        """Every volume ever made as a copy of source (deleted ones too)."""
        return [v for v in fake.volumes() if v["tags"].get("lifeboat:relocated-from") == source]


def snapshots_of(fake: lbtest.FakeAWS, source: str, live: bool = True) -> list[dict[str, Any]]:
        return [x for x in fake.snapshots() if x["volume_id"] == source and (not live or x["state"] != "deleted")]


def done(fake: lbtest.FakeAWS, source: str) -> bool:
        v = fake.volume(source)
        return v["tags"].get("lifeboat:state") == "relocated" and not snapshots_of(fake, source)


def relocate_until_done(fake: lbtest.FakeAWS, env: dict[str, str], source: str, *args: str,
                        timeout: float = 60) -> list[dict[str, Any]]:
        """Runs reap --relocate (as a timer would, more often) until the source is tagged relocated
        and no snapshot of it is left; every run must exit 0. Returns the reports."""
        docs = []
        deadline = time.monotonic() + timeout
        while not done(fake, source):
                if time.monotonic() > deadline:
                        pytest.fail(f"relocation of {source} not done after {timeout}s:\n{fake.describe(source)}\n"
                                    f"snapshots: {snapshots_of(fake, source)}\nlast report: {docs[-1:]}")
                p, doc = reap_json(env, "--relocate", *args)
                assert p.returncode == EXIT_OK, (p.stderr, doc)
                assert doc["relocations"]["failed"] == 0, doc
                docs.append(doc)
                time.sleep(0.2)
        return docs


def mutating(fake: lbtest.FakeAWS) -> list[str]:
        return [r["action"] for r in fake.requests("ec2") if r["action"] in CREATING]


def start_reap(env: dict[str, str], *args: str) -> subprocess.Popen:
        return subprocess.Popen([lbtest.lifeboat_bin(), "reap", "--json", "--relocate", *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, timeout: float = 60) -> tuple[int, dict[str, Any], str]:
        try:
                out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                pytest.fail(f"reap did not finish within {timeout}s:\n{out}\n{err}")
        try:
                return p.returncode, json.loads(out), err
        except json.JSONDecodeError:
                pytest.fail(f"reap --json printed no JSON (exit {p.returncode}):\n{out}\n{err}")


def kill_when(fake: lbtest.FakeAWS, p: subprocess.Popen, what: str, cond: Callable[[], Any]) -> None:
        """SIGKILL the reaper once cond() holds (the fake did the step, its answer is still on the way)."""
        try:
                fake.wait_for(what, cond, timeout=20, interval=0.05)
        finally:
                p.kill()
                p.communicate()
        assert p.returncode == -9, f"the reaper ended by itself before the kill ({what})"


def boot_env(fake: lbtest.FakeAWS, inst: dict[str, Any]) -> dict[str, str]:
        env = fake.env_for(inst)
        env["LIFEBOAT_FLUENTD_RPC"] = ""            # no fluentd here: never talk to a real port
        env["LIFEBOAT_BOOT_TIMEOUT"] = "60s"
        env["LIFEBOAT_DEVICE_TIMEOUT"] = "10s"
        return env


def quick(fake: lbtest.FakeAWS, **more: Any) -> None:
        """Short snapshots and volume creation: the test waits seconds, not the minutes of EBS."""
        fake.config(snapshot_delay_ms=400, volume_create_delay_ms=100, **more)


# --------------------------------------------------------------------------


def test_stranded_volume_moves_and_a_boot_there_recovers_it(fake, tmp_path):
        quick(fake)
        running_instance(fake, AZ_A)
        files = chunk_files(3)
        src, image, fs_uuid = stranded(fake, tmp_path, "src", files=files)
        env = reap_env(fake, tmp_path)

        # The first run takes the snapshot, tagged with the group, the source and where it goes.
        p, doc = reap_json(env, "--relocate")
        assert p.returncode == EXIT_OK, p.stderr       # being moved: no human needed
        assert doc["relocate"] is True
        v = by_id(doc)[src]
        assert v["category"] == "relocating" and v["lifeboat_state"] == "dirty"
        r = v["relocation"]
        assert r["step"] == "start" and r["started"] and r["target_zone"] == AZ_A and not r["failed"]
        assert doc["relocations"]["started"] == 1 and doc["counts"]["relocating"] == 1
        [snap] = snapshots_of(fake, src)
        assert snap["snapshot_id"] == r["snapshot_id"]
        assert snap["tags"] == {"lifeboat:group": GROUP, "lifeboat:relocated-from": src,
                                "lifeboat:target-zone": AZ_A}
        assert copies_of(fake, src) == []

        # Then run by run: wait for the snapshot, copy, wait for the copy, mark, delete the snapshot.
        docs = relocate_until_done(fake, env, src)
        steps = [by_id(d)[src]["relocation"] for d in docs]
        assert sum(s["copied"] for s in steps) == 1
        assert sum(s["marked"] for s in steps) == 1
        assert sum(s["snapshots_deleted"] for s in steps) == 1
        assert sum(d["relocations"]["source_marked"] for d in docs) == 1

        [copy] = copies_of(fake, src)
        assert copy["availability_zone"] == AZ_A and copy["state"] == "available"
        assert copy["snapshot_id"] == snap["snapshot_id"]
        source = fake.volume(src)
        assert copy["size_gib"] == source["size_gib"] and copy["volume_type"] == source["volume_type"]
        assert copy["iops"] == source["iops"] and copy["throughput"] == source["throughput"]
        tags = dict(copy["tags"])
        tags.pop("lifeboat:available-since", None)      # reap's own mark, once it saw the copy available
        assert tags == {"lifeboat:group": GROUP, "lifeboat:state": "dirty", "lifeboat:owner": DEAD_OWNER,
                        "lifeboat:fs-uuid": fs_uuid, "lifeboat:relocated-from": src}
        assert source["tags"]["lifeboat:state"] == "relocated"
        assert source["tags"]["lifeboat:relocated-to"] == copy["volume_id"]
        assert lbtest.iso_in(-120) <= source["tags"]["lifeboat:relocated-at"] <= lbtest.iso_in(1)
        assert source["state"] == "available"           # deleted later, after --min-age
        assert snapshots_of(fake, src) == []
        # The content moved byte for byte.
        assert image_files(copy["image"]) == files

        # A new instance in us-east-1a recovers the copy like any dirty volume.
        inst = fake.add_instance(availability_zone=AZ_A)
        benv = boot_env(fake, inst)
        r = run_lifeboat(benv, "boot", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        report = json.loads(r.stdout)
        recovered = {v["volume_id"]: v for v in report["volumes"]}[copy["volume_id"]]
        assert recovered["outcome"] == "recovered", recovered
        assert recovered["previous_owner"] == DEAD_OWNER
        mount_path = Path(benv["LIFEBOAT_RECOVERY_ROOT"]) / copy["volume_id"]
        m = mount_of(mount_path)
        assert m is not None and m["fstype"] == "xfs" and "nouuid" in m["options"].split(","), m
        for rel, content in files.items():
                assert (mount_path / rel).read_bytes() == content
        assert fake.volume(copy["volume_id"])["tags"]["lifeboat:owner"] == inst["instance_id"]

        # A later reap deletes the source (its copy exists), never the copy; nothing is left over.
        p, doc = reap_json(env, "--relocate", "--min-age", "0")
        assert p.returncode == EXIT_OK, p.stderr
        assert by_id(doc)[src]["category"] == "deleted"
        assert by_id(doc)[src]["reason"].startswith(f"relocated to {copy['volume_id']} ")
        assert fake.volume(src)["state"] == "deleted"
        assert fake.volume(copy["volume_id"])["state"] == "in-use"
        assert snapshots_of(fake, src) == [] and len(copies_of(fake, src)) == 1


def test_three_reapers_at_once_make_one_copy(fake, tmp_path):
        quick(fake, ec2_latency_ms=300)                 # keeps the three in flight together
        running_instance(fake, AZ_A)
        files = chunk_files(2)
        src, _, _ = stranded(fake, tmp_path, "src", files=files)
        env = reap_env(fake, tmp_path)

        rounds = 0
        while not done(fake, src):
                rounds += 1
                assert rounds <= 30, (fake.describe(src), snapshots_of(fake, src))
                results = [finish(p) for p in [start_reap(env) for _ in range(3)]]
                for rc, doc, err in results:
                        assert rc == EXIT_OK, err
                        assert doc["relocations"]["failed"] == 0, doc
                time.sleep(0.2)

        # Without a ClientToken the three took a snapshot each; one was kept, the others went,
        # and CreateVolume's ClientToken made one copy of it however many asked.
        made = snapshots_of(fake, src, live=False)
        assert len(made) >= 2, "the reapers did not race"
        assert snapshots_of(fake, src) == []
        [copy] = copies_of(fake, src)
        assert copy["state"] == "available"
        assert len([r for r in fake.requests("ec2", "CreateVolume") if r["status"] == 200]) >= 1
        assert image_files(copy["image"]) == files
        assert fake.volume(src)["tags"]["lifeboat:relocated-to"] == copy["volume_id"]


def test_reaper_killed_after_each_step(fake, tmp_path):
        quick(fake)
        running_instance(fake, AZ_A)
        files = chunk_files(2)
        src, _, _ = stranded(fake, tmp_path, "src", files=files)
        env = reap_env(fake, tmp_path)

        # 1. Killed after CreateSnapshot was done, before it heard back.
        fake.fault(action="CreateSnapshot", kind="latency_after_success", latency_ms=20000)
        kill_when(fake, start_reap(env), "the snapshot", lambda: snapshots_of(fake, src))
        fake.reset_faults()
        [snap] = snapshots_of(fake, src)
        assert copies_of(fake, src) == [] and fake.volume(src)["tags"]["lifeboat:state"] == "dirty"
        fake.wait_for("the snapshot to complete",
                      lambda: snapshots_of(fake, src)[0]["state"] == "completed", timeout=10)

        # 2. Killed after CreateVolume: the copy exists, tagged dirty from the start.
        fake.fault(action="CreateVolume", kind="latency_after_success", latency_ms=20000)
        kill_when(fake, start_reap(env), "the copy", lambda: copies_of(fake, src))
        fake.reset_faults()
        [copy] = copies_of(fake, src)
        assert copy["tags"]["lifeboat:state"] == "dirty" and copy["snapshot_id"] == snap["snapshot_id"]
        assert [x["snapshot_id"] for x in snapshots_of(fake, src)] == [snap["snapshot_id"]]
        fake.wait_volume(copy["volume_id"], "available")

        # 3. Killed after the source was tagged relocated, before the snapshot went.
        fake.fault(action="CreateTags", kind="latency_after_success", latency_ms=3000, count=-1)
        kill_when(fake, start_reap(env), "the source's relocated tag",
                  lambda: fake.volume(src)["tags"].get("lifeboat:state") == "relocated")
        fake.reset_faults()
        assert fake.volume(src)["tags"]["lifeboat:relocated-to"] == copy["volume_id"]
        assert len(snapshots_of(fake, src)) == 1

        # 4. Killed after DeleteSnapshot.
        fake.fault(action="DeleteSnapshot", kind="latency_after_success", latency_ms=20000)
        kill_when(fake, start_reap(env), "the snapshot's deletion", lambda: not snapshots_of(fake, src))
        fake.reset_faults()

        # 5. Killed after DeleteVolume of the source.
        fake.fault(action="DeleteVolume", kind="latency_after_success", latency_ms=20000)
        kill_when(fake, start_reap(env, "--min-age", "0"), "the source's deletion",
                  lambda: fake.volume(src)["state"] == "deleted")
        fake.reset_faults()

        # The next run finds nothing left to do; one copy, with the chunks, and nothing else.
        p, doc = reap_json(env, "--relocate", "--min-age", "0")
        assert p.returncode == EXIT_OK, p.stderr
        assert doc["relocations"] == {"started": 0, "waiting_for_snapshot": 0, "copied": 0, "waiting_for_copy": 0,
                                      "source_marked": 0, "snapshots_deleted": 0, "nowhere_to_go": 0, "failed": 0}
        assert by_id(doc)[copy["volume_id"]]["lifeboat_state"] == "dirty"
        assert len(copies_of(fake, src)) == 1 and len(snapshots_of(fake, src, live=False)) == 1
        assert snapshots_of(fake, src) == []
        assert image_files(copy["image"]) == files


def test_not_moved_where_the_group_still_runs_and_nowhere_to_go(fake, tmp_path):
        quick(fake)
        env = reap_env(fake, tmp_path)
        src, _, _ = stranded(fake, tmp_path, "src")

        # No instance of the group anywhere: nothing moves, and a human is needed (exit 4).
        p, doc = reap_json(env, "--relocate")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        v = by_id(doc)[src]
        assert v["category"] == "stranded" and v["relocation"] is None
        assert "nowhere to move it" in v["reason"]
        assert doc["relocations"]["nowhere_to_go"] == 1
        assert mutating(fake) == [] and fake.snapshots() == []
        assert "relocation: 0 started" in run_lifeboat(env, "reap", "--relocate").stdout

        # An instance in its own zone: that one recovers it when it boots; not moved, still exit 4.
        running_instance(fake, AZ_B)
        running_instance(fake, AZ_A)
        fake.reset_requests()
        p, doc = reap_json(env, "--relocate")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        v = by_id(doc)[src]
        assert v["category"] == "stranded"
        assert f"not moved: 1 of the group's volumes are in use in {AZ_B}" in v["reason"]
        assert mutating(fake) == [] and fake.snapshots() == []


def test_off_by_default_on_by_setting_and_dry_run(fake, tmp_path):
        quick(fake)
        running_instance(fake, AZ_A)
        src, _, _ = stranded(fake, tmp_path, "src")

        # Off unless asked for: stranded as before, and no snapshot is even looked at.
        env = reap_env(fake, tmp_path)
        p, doc = reap_json(env)
        assert p.returncode == EXIT_ATTENTION and doc["relocate"] is False
        assert by_id(doc)[src]["category"] == "stranded"
        assert {r["action"] for r in fake.requests("ec2")} == {"DescribeVolumes"}
        p, doc = reap_json(reap_env(fake, tmp_path, LIFEBOAT_RELOCATE="true"), "--no-relocate")
        assert p.returncode == EXIT_ATTENTION and doc["relocate"] is False

        # --dry-run prints the plan and changes nothing.
        on = reap_env(fake, tmp_path, LIFEBOAT_RELOCATE="true")
        fake.reset_requests()
        p = run_lifeboat(on, "reap", "--dry-run")
        assert p.returncode == EXIT_OK, p.stderr
        section = p.stdout.split("RELOCATING (moving to a zone where the group runs): 1\n")[1]
        assert src in section and f"moving it to {AZ_A}" in section and "[dry run: would start]" in section
        p, doc = reap_json(on, "--dry-run")
        r = by_id(doc)[src]["relocation"]
        assert r["step"] == "start" and r["target_zone"] == AZ_A and not r["started"]
        assert {r["action"] for r in fake.requests("ec2")} == {"DescribeVolumes", "DescribeSnapshots"}
        assert fake.snapshots() == []

        # The setting turns it on.
        p, doc = reap_json(on)
        assert p.returncode == EXIT_OK and doc["relocate"] is True
        assert by_id(doc)[src]["relocation"]["started"]


def test_relocations_spread_over_the_zones_and_az_scope(fake, tmp_path):
        quick(fake)
        for az in (AZ_A, AZ_A, AZ_A, AZ_C):
                running_instance(fake, az)
        sources = sorted(stranded(fake, tmp_path, f"s{i}")[0] for i in range(3))
        env = reap_env(fake, tmp_path)

        # A reaper limited to us-east-1b still sees where the group runs (the whole region).
        p, doc = reap_json(env, "--relocate", "--az", AZ_B)
        assert p.returncode == EXIT_OK, p.stderr
        assert {v["volume_id"] for v in doc["volumes"]} == set(sources)
        targets = {x["volume_id"]: x["tags"]["lifeboat:target-zone"] for x in fake.snapshots()}
        # The zone with the most instances first, in proportion: 3 to 1.
        assert [targets[s] for s in sources] == [AZ_A, AZ_A, AZ_C]

        for s in sources:
                relocate_until_done(fake, env, s)
        for s in sources:
                [copy] = copies_of(fake, s)
                assert copy["availability_zone"] == targets[s]


def test_snapshot_in_error_is_replaced(fake, tmp_path):
        running_instance(fake, AZ_A)
        src, _, _ = stranded(fake, tmp_path, "src")
        quick(fake, failing_snapshots=[src])
        env = reap_env(fake, tmp_path)

        p, doc = reap_json(env, "--relocate")
        assert by_id(doc)[src]["relocation"]["started"]
        [bad] = snapshots_of(fake, src)
        fake.wait_for("the snapshot to fail", lambda: snapshots_of(fake, src)[0]["state"] == "error", timeout=10)

        # The next run deletes it and takes another one.
        fake.config(failing_snapshots=[])
        p, doc = reap_json(env, "--relocate")
        assert p.returncode == EXIT_OK, p.stderr
        r = by_id(doc)[src]["relocation"]
        assert r["step"] == "start" and r["started"] and r["snapshots_deleted"] == 1
        assert [x["state"] for x in fake.snapshots() if x["snapshot_id"] == bad["snapshot_id"]] == ["deleted"]
        relocate_until_done(fake, env, src)
        assert len(copies_of(fake, src)) == 1


def test_a_tag_alone_makes_no_copy(fake, tmp_path):
        """Anyone with CreateTags can put relocated-from on a volume. A blank group volume that
        names the stranded one is not taken for its copy (which would let the source be marked
        and then deleted): the real move happens, and the source points at the real copy."""
        quick(fake)
        running_instance(fake, AZ_A)
        src, _, _ = stranded(fake, tmp_path, "src")
        planted = fake.add_volume(availability_zone=AZ_A, tags={
                **lbtest.group_tags(GROUP, "dirty"), "lifeboat:relocated-from": src})
        env = reap_env(fake, tmp_path)

        relocate_until_done(fake, env, src)
        real = [c for c in copies_of(fake, src) if c["volume_id"] != planted]
        assert len(real) == 1 and real[0]["snapshot_id"], real
        assert fake.volume(src)["tags"]["lifeboat:relocated-to"] == real[0]["volume_id"]
        assert fake.volume(planted)["state"] == "available"
        assert fake.volume(planted)["tags"]["lifeboat:state"] == "dirty"


def test_relocated_source_without_its_copy_is_kept(fake, tmp_path):
        """No boot claims a relocated volume: without its copy, only a person can recover it, so
        it is reported as stranded (exit 4, the Stranded metric), never deleted."""
        env = reap_env(fake, tmp_path)
        src = fake.add_volume(availability_zone=AZ_B, tags=lbtest.group_tags(
                GROUP, "relocated", relocated_to="vol-0000000000000c0de", relocated_at=lbtest.iso_in(-3600)))
        p, doc = reap_json(env, "--min-age", "0")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        v = by_id(doc)[src]
        assert v["category"] == "stranded" and v["lifeboat_state"] == "relocated"
        assert "vol-0000000000000c0de, which does not exist" in v["reason"]
        assert fake.volume(src)["state"] == "available"
        assert fake.requests("ec2", "DeleteVolume") == []


def test_a_drained_copy_waits_for_its_source(fake, tmp_path):
        """The hourly timer may mark the source in the same run that finds the copy recovered,
        drained and flushed: the copy then stays until the source is deleted, since a relocated
        volume is deleted only while its copy exists."""
        quick(fake)
        running_instance(fake, AZ_A)
        src, _, _ = stranded(fake, tmp_path, "src")
        env = reap_env(fake, tmp_path)
        relocate_until_done(fake, env, src)
        [copy] = copies_of(fake, src)
        cid = copy["volume_id"]
        assert fake.ec2("CreateTags", {"ResourceId.1": cid, "Tag.1.Key": "lifeboat:state", "Tag.1.Value": "flushed",
                                       "Tag.2.Key": "lifeboat:flushed-at",
                                       "Tag.2.Value": lbtest.iso_in(-3600)}).status == 200

        # The source is younger than --min-age: both stay.
        p, doc = reap_json(env, "--az", AZ_A)
        assert p.returncode == EXIT_OK, p.stderr
        v = by_id(doc)[cid]
        assert v["category"] == "kept" and f"a copy of {src}, which still exists" in v["reason"]
        assert fake.volume(cid)["state"] == "available"
        # Old enough: the source goes (its copy is there), the copy in the next run.
        p, doc = reap_json(env, "--min-age", "0")
        assert by_id(doc)[src]["category"] == "deleted" and by_id(doc)[cid]["category"] == "kept"
        p, doc = reap_json(env, "--min-age", "0")
        assert by_id(doc)[cid]["category"] == "deleted"
        assert fake.volume(cid)["state"] == "deleted" and fake.volume(src)["state"] == "deleted"
