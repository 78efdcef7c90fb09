# SPDX-License-Identifier: MIT
"""Integration tests of `lifeboat boot` against the fake AWS (tests/fakeaws/).

Every volume is a real image file behind a real loop device, every instance has its
own fake sysfs and /dev, so lifeboat really probes, formats and mounts. The fake's
request log is the witness of what lifeboat asked AWS to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest

import lbtest
from lbtest import image_files, make_image, mount_of, run_lifeboat

AZ = "us-east-1a"
GROUP = "test-group"
DEAD_OWNER = "i-0dead0000beef0001"
CHUNK = "s3/buffer.b5f0123456789abcdef0123456789abcd.log"
CHUNK_META = CHUNK + ".meta"
MUTATING = ("AttachVolume", "DetachVolume", "CreateTags", "DeleteTags", "DeleteVolume", "ModifyInstanceAttribute")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def tags(state: str = "dirty", owner: str | None = DEAD_OWNER, fs_uuid: str | None = None,
         group: str = GROUP) -> dict[str, str]:
        return lbtest.group_tags(group, state, owner, fs_uuid)


def chunk_files(n: int = 1) -> dict[str, bytes]:
        files = {}
        for i in range(n):
                files[CHUNK.replace("abcd.log", f"{i:04x}.log")] = f"record {i}\n".encode() * 100
                files[CHUNK_META.replace("abcd.log", f"{i:04x}.log")] = b"\x85meta"
        return files


def orphan(fake, tmp_path: Path, name: str, fs: str | None = "xfs", files: dict[str, bytes] | None = None,
           fs_uuid: str | None = None, tag_uuid: str | None = "same", az: str = AZ,
           extra_tags: dict[str, str] | None = None, **volume_kw: Any) -> tuple[str, Path, str | None]:
        """A dirty group volume left behind by a dead instance: (volume id, image, fs uuid).
        tag_uuid "same" tags the filesystem's own UUID; None leaves the tag out."""
        image = tmp_path / "images" / f"{name}.img"
        vid, fs_uuid = fake.add_orphan(image, GROUP, DEAD_OWNER, fs, files, fs_uuid, tag_uuid, extra_tags,
                                       availability_zone=az, **volume_kw)
        return vid, image, fs_uuid


def boot_env(fake, inst: dict[str, Any], buffer: bool = True, use_role: bool = False,
             **settings: str) -> dict[str, str]:
        env = fake.env_for(inst, use_role=use_role)
        if buffer and inst.get("buffer_volume_id"):
                env["LIFEBOAT_BUFFER_DEVICE"] = "/dev/sdf"
        env["LIFEBOAT_FLUENTD_RPC"] = ""            # no fluentd here: never talk to a real port
        env["LIFEBOAT_BOOT_TIMEOUT"] = "60s"
        env["LIFEBOAT_DEVICE_TIMEOUT"] = "10s"
        env.update(settings)
        return env


def boot(env: dict[str, str], *args: str, expect: int | None = 0, timeout: float = 120) -> dict[str, Any]:
        """Runs `lifeboat boot --json`; checks the exit code and returns the report."""
        r = run_lifeboat(env, "boot", "--json", *args, timeout=timeout)
        if expect is not None:
                assert r.returncode == expect, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        try:
                report = json.loads(r.stdout)
        except json.JSONDecodeError:
                pytest.fail(f"boot printed no JSON (exit {r.returncode}):\n{r.stdout}\nstderr:\n{r.stderr}")
        assert report["exit_code"] == r.returncode
        report["_stderr"] = r.stderr
        return report


def by_volume(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {v["volume_id"]: v for v in report["volumes"]}


def outcomes(report: dict[str, Any]) -> dict[str, str]:
        return {v["volume_id"]: v["outcome"] for v in report["volumes"]}


def manifest(env: dict[str, str]) -> dict[str, dict[str, Any]]:
        p = Path(env["LIFEBOAT_RUN_DIR"]) / "recovered.json"
        if not p.exists():
                return {}
        doc = json.loads(p.read_text())
        assert doc["version"] == 1
        return {e["volume_id"]: e for e in doc["volumes"]}


def snippets(env: dict[str, str]) -> dict[str, str]:
        d = Path(env["LIFEBOAT_FLUENTD_CONF_DIR"])
        return {p.name: p.read_text() for p in sorted(d.glob("*.conf"))}


def attachment_of(fake, vid: str) -> dict[str, Any] | None:
        v = fake.volume(vid)
        assert v is not None
        assert len(v["attachments"]) <= 1, v
        return v["attachments"][0] if v["attachments"] else None


def mutating(fake) -> list[str]:
        return [r["action"] for r in fake.requests("ec2") if r["action"] in MUTATING]


def probe(image: Path) -> str:
        """What blkid sees in an image file ("" for nothing)."""
        r = lbtest.run(["blkid", "-p", "-o", "export", str(image)], check=False)
        return r.stdout.strip()


def sha256(path: Path) -> str:
        """A digest of an image's content; holes are skipped (they read as zeros anyway), so
        hashing a sparse 1 GiB image costs only its data."""
        h = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY)
        try:
                size = os.fstat(fd).st_size
                h.update(str(size).encode())
                off = 0
                while off < size:
                        try:
                                start = os.lseek(fd, off, os.SEEK_DATA)
                        except OSError:         # ENXIO: only a hole is left
                                break
                        end = os.lseek(fd, start, os.SEEK_HOLE)
                        os.lseek(fd, start, os.SEEK_SET)
                        pos = start
                        while pos < end:
                                block = os.read(fd, min(1 << 20, end - pos))
                                if not block:
                                        break
                                if block.count(0) != len(block):
                                        h.update(pos.to_bytes(8, "little") + block)
                                pos += len(block)
                        off = end
        finally:
                os.close(fd)
        return h.hexdigest()


def assert_recovered(fake, inst: dict[str, Any], env: dict[str, str], report: dict[str, Any], vid: str,
                     files: dict[str, bytes] | None = None, previous_owner: str = DEAD_OWNER) -> None:
        """Attached here, mounted at RECOVERY_ROOT/<vol> with the chunks, snippet and manifest entry."""
        v = by_volume(report)[vid]
        assert v["outcome"] in ("recovered", "already-recovered"), v
        mount_path = Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid
        assert v["mount_path"] == str(mount_path)
        att = attachment_of(fake, vid)
        assert att and att["instance_id"] == inst["instance_id"] and att["status"] == "attached", att
        assert v["device"] == att["device"]
        assert v["node"] == att["node"]
        m = mount_of(mount_path)
        assert m is not None, f"{mount_path} is not mounted"
        assert m["maj:min"] == att["rdev"], (m, att)
        for rel, content in (files or {}).items():
                assert (mount_path / rel).read_bytes() == content
        conf = Path(env["LIFEBOAT_FLUENTD_CONF_DIR"]) / f"{vid}.conf"
        assert v["config_file"] == str(conf)
        text = conf.read_text()
        assert f"path {mount_path}/s3" in text
        assert f"@LIFEBOAT_{vid}" in text
        assert v["previous_owner"] == previous_owner
        e = manifest(env)[vid]
        assert e["mount_path"] == str(mount_path)
        assert e["device"] == att["node"]
        assert e["config_file"] == str(conf)
        assert (e["previous_owner"] or "") == previous_owner
        tags_now = fake.volume(vid)["tags"]
        assert tags_now["lifeboat:state"] == "dirty"
        assert tags_now["lifeboat:owner"] == inst["instance_id"]


def assert_untouched(fake, vid: str, before: dict[str, Any]) -> None:
        """Never attached, detached or tagged: it looks exactly as before."""
        now = fake.volume(vid)
        assert now["state"] == before["state"] and now["attachments"] == before["attachments"], now
        assert now["tags"] == before["tags"]


def add_instance(fake, buffer: bool | dict = True, **kw: Any) -> dict[str, Any]:
        if buffer is True:
                buffer = {"device": "/dev/sdf", "size_gib": 1}
        if buffer:
                kw["buffer"] = buffer
        return fake.add_instance(availability_zone=kw.pop("availability_zone", AZ), **kw)


# --------------------------------------------------------------------------
# the own buffer volume
# --------------------------------------------------------------------------

def test_own_blank_buffer_formatted_once_then_mounted_not_formatted(fake):
        inst = add_instance(fake)
        bvid = inst["buffer_volume_id"]
        env = boot_env(fake, inst)

        r = boot(env)
        own = r["own_volume"]
        assert own["ready"] and own["formatted"] and own["mounted_now"], own
        assert own["volume_id"] == bvid and own["fs_type"] == "xfs" and own["fs_uuid"]
        assert own["delete_on_termination_cleared"] and own["tags_written"]
        m = mount_of(env["LIFEBOAT_BUFFER_MOUNT"])
        assert m and m["fstype"] == "xfs" and m["maj:min"] == attachment_of(fake, bvid)["rdev"]
        for opt in ("nodev", "nosuid", "noexec", "noatime"):
                assert opt in m["options"].split(","), m
        v = fake.volume(bvid)
        assert v["tags"] == {"lifeboat:group": GROUP, "lifeboat:state": "dirty",
                             "lifeboat:owner": inst["instance_id"], "lifeboat:fs-uuid": own["fs_uuid"]}
        assert v["attachments"][0]["delete_on_termination"] is False
        assert r["volumes"] == [] and r["candidates"] == 0

        # fluentd writes into it; then the instance reboots: the buffer is unmounted but
        # stays attached. The second boot mounts it again and must not format it.
        chunk = Path(env["LIFEBOAT_BUFFER_MOUNT"]) / CHUNK
        chunk.parent.mkdir(parents=True)
        chunk.write_bytes(b"live records\n")
        lbtest.run(["umount", env["LIFEBOAT_BUFFER_MOUNT"]])
        fake.reset_requests()

        r2 = boot(env)
        own2 = r2["own_volume"]
        assert own2["ready"] and own2["mounted_now"] and not own2["formatted"], own2
        assert own2["fs_uuid"] == own["fs_uuid"]
        assert not own2["tags_written"] and not own2["delete_on_termination_cleared"]
        assert chunk.read_bytes() == b"live records\n"
        assert mutating(fake) == []


def test_rerun_with_buffer_mounted_is_a_noop_buffer_only(fake):
        inst = add_instance(fake)
        env = boot_env(fake, inst)
        boot(env)
        fake.reset_requests()

        r = boot(env)
        own = r["own_volume"]
        assert own["ready"] and not own["mounted_now"] and not own["formatted"] and not own["tags_written"]
        assert mutating(fake) == []


def test_buffer_device_without_volume_exits_3_and_still_recovers(fake, tmp_path):
        inst = add_instance(fake)
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "o1", files=files)
        env = boot_env(fake, inst, LIFEBOAT_BUFFER_DEVICE="/dev/sdh")

        r = boot(env, expect=3)
        own = r["own_volume"]
        assert not own["ready"] and own["volume_id"] == ""
        assert "/dev/sdh" in own["reason"]
        assert "/dev/sdh" in r["_stderr"]
        # The old chunks matter more than this instance's own buffer: recovery still ran.
        assert_recovered(fake, inst, env, r, vid, files)
        assert mount_of(env["LIFEBOAT_BUFFER_MOUNT"]) is None
        # The real buffer volume was left alone.
        assert fake.volume(inst["buffer_volume_id"])["tags"] == {}


# --------------------------------------------------------------------------
# the request budget
# --------------------------------------------------------------------------

@pytest.mark.parametrize("use_role", [False, True], ids=["static-credentials", "instance-role"])
def test_nothing_to_recover_takes_at_most_6_requests(fake, use_role):
        inst = add_instance(fake)
        env = boot_env(fake, inst)
        boot(env)                       # prepares the buffer (formats, tags): not the case measured
        env = boot_env(fake, inst, use_role=use_role)
        assert ("AWS_ACCESS_KEY_ID" in env) != use_role
        fake.reset_requests()

        r = boot(env)
        assert r["volumes"] == [] and r["candidates"] == 0 and r["own_volume"]["ready"]
        reqs = fake.requests()
        imds = [q for q in reqs if q["service"] == "imds"]
        ec2 = [q for q in reqs if q["service"] == "ec2"]
        assert [q["action"] for q in ec2] == ["DescribeVolumes", "DescribeVolumes"]
        paths = sorted(q["action"] for q in imds)
        expected = ["/latest/api/token", "/latest/dynamic/instance-identity/document"]
        if use_role:
                expected += ["/latest/meta-data/iam/security-credentials/",
                             "/latest/meta-data/iam/security-credentials/lifeboat-role"]
        assert paths == sorted(expected)
        assert len(reqs) == (6 if use_role else 4) <= 6
        assert all(q["status"] == 200 for q in reqs)
        # The report counts what the fake saw.
        assert r["imds_requests"] == len(imds) and r["ec2_requests"] == len(ec2)


def test_nothing_to_recover_without_buffer(fake):
        inst = add_instance(fake, buffer=False)
        env = boot_env(fake, inst)
        fake.reset_requests()
        r = boot(env)
        assert r["own_volume"] is None
        assert r["volumes"] == [] and r["candidates"] == 0
        assert len(fake.requests()) == 4
        assert mutating(fake) == []


# --------------------------------------------------------------------------
# recovery
# --------------------------------------------------------------------------

def test_spot_interruption_end_to_end(fake):
        """Instance A buffers on its volume and dies; instance B recovers the volume."""
        a = add_instance(fake)
        env_a = boot_env(fake, a)
        boot(env_a)
        chunk = Path(env_a["LIFEBOAT_BUFFER_MOUNT"]) / CHUNK
        chunk.parent.mkdir(parents=True)
        chunk.write_bytes(b"unsent records\n" * 50)
        lbtest.run(["umount", env_a["LIFEBOAT_BUFFER_MOUNT"]])
        done = fake.terminate(a["instance_id"])
        vid = a["buffer_volume_id"]
        assert done["detached"] == [vid] and fake.volume(vid)["state"] == "available"

        b = add_instance(fake)
        env_b = boot_env(fake, b)
        r = boot(env_b)
        assert r["candidates"] == 1
        assert_recovered(fake, b, env_b, r, vid, {CHUNK: b"unsent records\n" * 50},
                         previous_owner=a["instance_id"])
        assert r["own_volume"]["ready"] and r["own_volume"]["volume_id"] == b["buffer_volume_id"]
        # Both buffers are xfs made by lifeboat on this machine: different UUIDs, and the
        # recovery mount is read-write (fluentd deletes chunks as it sends them).
        m = mount_of(Path(env_b["LIFEBOAT_RECOVERY_ROOT"]) / vid)
        assert "rw" in m["options"].split(",")


def test_xfs_orphan_sharing_own_uuid_mounts_with_nouuid(fake, tmp_path):
        shared = str(uuidlib.uuid4())
        own_image = make_image(tmp_path / "images" / "own.img", 1, "xfs", uuid=shared)
        inst = add_instance(fake, buffer={"device": "/dev/sdf", "image": str(own_image)})
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "twin", files=files, fs_uuid=shared)
        env = boot_env(fake, inst)

        r = boot(env)
        assert r["own_volume"]["ready"] and not r["own_volume"]["formatted"]
        assert r["own_volume"]["fs_uuid"] == shared
        assert_recovered(fake, inst, env, r, vid, files)
        m = mount_of(Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid)
        assert "nouuid" in m["options"].split(","), m
        assert mount_of(env["LIFEBOAT_BUFFER_MOUNT"])["fstype"] == "xfs"


def test_ext4_orphan(fake, tmp_path):
        inst = add_instance(fake)
        files = chunk_files(2)
        vid, _, _ = orphan(fake, tmp_path, "e4", fs="ext4", files=files)
        env = boot_env(fake, inst, LIFEBOAT_FS="ext4")

        r = boot(env)
        assert r["own_volume"]["fs_type"] == "ext4" and r["own_volume"]["formatted"]
        assert_recovered(fake, inst, env, r, vid, files)
        m = mount_of(Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid)
        assert m["fstype"] == "ext4" and "nouuid" not in m["options"]


def test_ext4_recovery_mounts_errors_remount_ro_whatever_its_superblock_says(fake, tmp_path):
        """Another instance's volume is untrusted: its superblock may ask for errors=panic."""
        inst = add_instance(fake)
        files = chunk_files(1)
        vid, image, _ = orphan(fake, tmp_path, "panic", fs="ext4", files=files)
        lbtest.run(["tune2fs", "-e", "panic", str(image)])
        assert "panic" in lbtest.run(["dumpe2fs", "-h", str(image)]).stdout.lower()
        env = boot_env(fake, inst)

        r = boot(env)
        assert_recovered(fake, inst, env, r, vid, files)
        m = mount_of(Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid)
        opts = m["options"].split(",")
        assert "errors=remount-ro" in opts, m
        assert {"nodev", "nosuid", "noexec"} <= set(opts), m


def test_several_orphans_attached_concurrently(fake, tmp_path):
        fake.config(attach_delay_ms=1500)
        inst = add_instance(fake)
        env = boot_env(fake, inst)
        boot(env)                                       # the own buffer, out of the way
        vols = {}
        for i in range(4):
                files = chunk_files(i + 1)
                vid, _, _ = orphan(fake, tmp_path, f"c{i}", files=files)
                vols[vid] = files
        fake.reset_requests()

        start = time.monotonic()
        r = boot(env)
        took = time.monotonic() - start
        assert r["candidates"] == 4
        for vid, files in vols.items():
                assert_recovered(fake, inst, env, r, vid, files)
        attaches = fake.requests("ec2", "AttachVolume")
        assert len(attaches) == 4
        # All four AttachVolume went out together, not one per 1.5 s attach.
        assert max(q["t"] for q in attaches) - min(q["t"] for q in attaches) < 1.0
        assert took < 4 * 1.5, f"boot took {took:.1f}s: the attaches were not concurrent"
        assert len({v["device"] for v in r["volumes"]}) == 4
        assert len({v["node"] for v in r["volumes"]}) == 4
        assert set(manifest(env)) == set(vols)
        assert set(snippets(env)) == {f"{vid}.conf" for vid in vols}
        # Waiting for four attachments is a handful of DescribeVolumes, not one per volume per poll.
        assert len(fake.requests("ec2", "DescribeVolumes")) <= 2 + 8


def test_snippet_placeholders_and_only_for_mounted_volumes(fake, tmp_path):
        inst = add_instance(fake)
        good, _, _ = orphan(fake, tmp_path, "good", files=chunk_files())
        blank, _, _ = orphan(fake, tmp_path, "blank", fs=None)
        env = boot_env(fake, inst)

        r = boot(env, expect=1)
        assert outcomes(r) == {good: "recovered", blank: "quarantined"}
        assert list(snippets(env)) == [f"{good}.conf"]
        text = snippets(env)[f"{good}.conf"]
        mount_path = f"{env['LIFEBOAT_RECOVERY_ROOT']}/{good}"
        assert "{{" not in text and "}}" not in text
        assert f"Generated for volume {good} mounted at {mount_path}" in text
        assert f'(previous owner "{DEAD_OWNER}", group "{GROUP}")' in text
        assert f"<label @LIFEBOAT_{good}>" in text
        assert f"@id lifeboat_{good}_s3" in text
        assert f"path {mount_path}/s3\n" in text
        assert set(manifest(env)) == {good}
        assert by_volume(r)[blank]["config_file"] == ""


def test_unknown_previous_owner_renders_empty(fake, tmp_path):
        inst = add_instance(fake, buffer=False)
        image = make_image(tmp_path / "images" / "noowner.img", 1, "xfs", chunk_files())
        vid = fake.add_volume(availability_zone=AZ, image=str(image), tags=tags(owner=None))
        env = boot_env(fake, inst)
        r = boot(env)
        assert_recovered(fake, inst, env, r, vid, previous_owner="")
        assert '(previous owner "", group' in snippets(env)[f"{vid}.conf"]
        assert manifest(env)[vid]["previous_owner"] is None


# --------------------------------------------------------------------------
# volumes that must not be mounted: quarantined
# --------------------------------------------------------------------------

def assert_quarantined(fake, inst: dict[str, Any], env: dict[str, str], report: dict[str, Any], vid: str,
                       reason_has: str) -> None:
        v = by_volume(report)[vid]
        assert v["outcome"] == "quarantined", v
        assert reason_has in v["reason"], v
        vol = fake.wait_volume(vid, "available")        # detached
        assert vol["attachments"] == []
        assert vol["tags"]["lifeboat:state"] == "quarantined"
        assert reason_has in vol["tags"]["lifeboat:reason"]
        assert vol["tags"]["lifeboat:group"] == GROUP
        mount_path = Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid
        assert mount_of(mount_path) is None
        assert not (Path(env["LIFEBOAT_FLUENTD_CONF_DIR"]) / f"{vid}.conf").exists()
        assert vid not in manifest(env)
        assert v["config_file"] == ""


def test_blank_orphan_is_quarantined_not_formatted(fake, tmp_path):
        inst = add_instance(fake)
        vid, image, _ = orphan(fake, tmp_path, "blank", fs=None)
        env = boot_env(fake, inst)

        r = boot(env, expect=1)
        assert_quarantined(fake, inst, env, r, vid, "blank")
        assert probe(image) == ""                       # still nothing on it: never formatted
        # The next boot does not try it again.
        fake.reset_requests()
        r2 = boot(env)
        assert r2["volumes"] == [] and r2["candidates"] == 0
        assert mutating(fake) == []


def test_fs_uuid_mismatch_is_quarantined_with_data_intact(fake, tmp_path):
        inst = add_instance(fake)
        files = chunk_files(3)
        vid, image, fs_uuid = orphan(fake, tmp_path, "mismatch", files=files, tag_uuid=str(uuidlib.uuid4()))
        before = image_files(image)
        assert before == files
        env = boot_env(fake, inst)

        r = boot(env, expect=1)
        assert_quarantined(fake, inst, env, r, vid, "does not match")
        assert image_files(image) == before
        assert f"UUID={fs_uuid}" in probe(image)


def test_partition_table_orphan_is_quarantined(fake, tmp_path):
        inst = add_instance(fake)
        image = make_image(tmp_path / "images" / "parted.img", 1, None)
        lbtest.run(["sfdisk", "-q", str(image)], input="label: dos\n,,L\n")
        digest = sha256(image)
        vid = fake.add_volume(availability_zone=AZ, image=str(image), tags=tags())
        env = boot_env(fake, inst)

        r = boot(env, expect=1)
        assert_quarantined(fake, inst, env, r, vid, "partition table")
        assert sha256(image) == digest


def test_exit_1_text_report_names_the_quarantined_volume(fake, tmp_path):
        inst = add_instance(fake, buffer=False)
        vid, _, _ = orphan(fake, tmp_path, "blank", fs=None)
        env = boot_env(fake, inst)
        r = run_lifeboat(env, "boot")
        assert r.returncode == 1, r.stderr
        assert f"QUARANTINED {vid}: blank" in r.stdout
        assert "1 quarantined" in r.stdout


# --------------------------------------------------------------------------
# attaching: stuck, throttled, limits
# --------------------------------------------------------------------------

def test_attach_stuck_past_timeout_is_detached_and_left_dirty(fake, tmp_path):
        inst = add_instance(fake)
        stuck, stuck_image, _ = orphan(fake, tmp_path, "stuck", files=chunk_files())
        ok, _, _ = orphan(fake, tmp_path, "ok", files=chunk_files())
        fake.config(stuck_attach=[stuck])
        env = boot_env(fake, inst, LIFEBOAT_ATTACH_TIMEOUT="3s")
        digest = sha256(stuck_image)

        start = time.monotonic()
        r = boot(env, expect=1)
        took = time.monotonic() - start
        v = by_volume(r)[stuck]
        assert v["outcome"] == "left-dirty" and "stuck" in v["reason"], v
        assert 3 <= took < 15
        assert outcomes(r)[ok] == "recovered"
        assert len(fake.requests("ec2", "DetachVolume")) == 1
        vol = fake.wait_volume(stuck, "available")
        assert vol["attachments"] == []
        assert vol["tags"]["lifeboat:state"] == "dirty"      # not quarantined: nothing is wrong with it
        assert vol["tags"]["lifeboat:owner"] == DEAD_OWNER
        assert stuck not in manifest(env) and f"{stuck}.conf" not in snippets(env)
        assert sha256(stuck_image) == digest

        # Once AWS behaves again, the next boot recovers it.
        fake.config(stuck_attach=[])
        r2 = boot(env)
        assert outcomes(r2) == {ok: "already-recovered", stuck: "recovered"}
        assert set(manifest(env)) == {ok, stuck}


def test_throttling_storm(fake, tmp_path):
        """A fleet boots at once and EC2 throttles: more refusals in a row than the client's
        three attempts, on every action boot needs. Boot rides it out."""
        inst = add_instance(fake)
        vols = {}
        for i in range(3):
                files = chunk_files()
                vid, _, _ = orphan(fake, tmp_path, f"t{i}", files=files)
                vols[vid] = files
        env = boot_env(fake, inst)
        storm = {"DescribeVolumes": 4, "ModifyInstanceAttribute": 3, "CreateTags": 3, "AttachVolume": 7}
        for action, count in storm.items():
                fake.fault(action=action, kind="throttle", count=count)

        r = boot(env)
        assert r["own_volume"]["ready"] and r["own_volume"]["delete_on_termination_cleared"]
        for vid, files in vols.items():
                assert_recovered(fake, inst, env, r, vid, files)
        assert fake.faults() == []                      # every throttle was met
        throttled = [q for q in fake.requests("ec2") if q.get("fault") == "throttle"]
        assert len(throttled) == sum(storm.values()) and all(q["status"] == 503 for q in throttled)
        # 7 throttles over 3 concurrent attaches of 3 attempts each: at least one attach
        # failed all its attempts and was sent again after a describe showed it free.
        assert len([q for q in fake.requests("ec2", "AttachVolume") if q["status"] == 200]) == 3
        own = fake.volume(inst["buffer_volume_id"])
        assert own["tags"]["lifeboat:state"] == "dirty"
        assert own["attachments"][0]["delete_on_termination"] is False


def test_throttled_past_the_boot_timeout_exits_3_and_touches_nothing(fake, tmp_path):
        inst = add_instance(fake)
        vid, _, _ = orphan(fake, tmp_path, "o", files=chunk_files())
        before = fake.volume(vid)
        env = boot_env(fake, inst, LIFEBOAT_BOOT_TIMEOUT="4s")
        fake.fault(action="DescribeVolumes", kind="throttle", count=-1)
        start = time.monotonic()
        r = boot(env, expect=3)
        assert time.monotonic() - start < 15
        assert r["volumes"] == []
        assert "RequestLimitExceeded" in r["_stderr"]
        assert mutating(fake) == []
        assert_untouched(fake, vid, before)
        assert mount_of(env["LIFEBOAT_BUFFER_MOUNT"]) is None


def test_max_recover_is_respected(fake, tmp_path):
        inst = add_instance(fake)
        vids = [orphan(fake, tmp_path, f"m{i}", files=chunk_files())[0] for i in range(3)]
        before = {vid: fake.volume(vid) for vid in vids}
        env = boot_env(fake, inst, LIFEBOAT_MAX_RECOVER="1")

        r = boot(env)
        got = outcomes(r)
        assert sorted(got.values()) == ["not-claimed", "not-claimed", "recovered"], got
        [taken] = [vid for vid, o in got.items() if o == "recovered"]
        assert_recovered(fake, inst, env, r, taken)
        assert len(fake.requests("ec2", "AttachVolume")) == 1
        for vid in vids:
                if vid != taken:
                        assert_untouched(fake, vid, before[vid])
                        assert by_volume(r)[vid]["reason"]
        assert set(manifest(env)) == {taken}


def test_other_az_other_group_and_not_dirty_are_never_touched(fake, tmp_path):
        inst = add_instance(fake)
        foreign = {
                "other-az": orphan(fake, tmp_path, "az", files=chunk_files(), az="us-east-1b")[0],
                "other-group": orphan(fake, tmp_path, "grp", files=chunk_files(),
                                      extra_tags={"lifeboat:group": "other-group"})[0],
                "flushed": orphan(fake, tmp_path, "fl", extra_tags={"lifeboat:state": "flushed"})[0],
                "quarantined": orphan(fake, tmp_path, "q", extra_tags={"lifeboat:state": "quarantined"})[0],
                "unmarked": fake.add_volume(availability_zone=AZ, tags={"lifeboat:group": GROUP}),
                "no-tags": fake.add_volume(availability_zone=AZ),
                "multi-attach": orphan(fake, tmp_path, "ma", files=chunk_files(), multi_attach=True,
                                       volume_type="io2")[0],
        }
        # Another live instance's buffer: dirty and in the group, but in use.
        other = add_instance(fake, buffer={"device": "/dev/sdf", "size_gib": 1,
                                           "tags": tags(owner="i-0a1b2c3d4e5f60718")})
        foreign["in-use"] = other["buffer_volume_id"]
        before = {vid: fake.volume(vid) for vid in foreign.values()}
        mine, _, _ = orphan(fake, tmp_path, "mine", files=chunk_files())
        env = boot_env(fake, inst)
        fake.reset_requests()

        r = boot(env)
        assert outcomes(r) == {mine: "recovered"}
        assert len(fake.requests("ec2", "AttachVolume")) == 1
        for what, vid in foreign.items():
                assert_untouched(fake, vid, before[vid])
        assert set(manifest(env)) == {mine}


# --------------------------------------------------------------------------
# dry run, report, exit codes
# --------------------------------------------------------------------------

def test_dry_run_changes_nothing(fake, tmp_path):
        inst = add_instance(fake)
        bvid = inst["buffer_volume_id"]
        vid, image, _ = orphan(fake, tmp_path, "o", files=chunk_files())
        before = {v: fake.volume(v) for v in (vid, bvid)}
        buffer_image = Path(fake.volume(bvid)["image"])
        digests = {vid: sha256(image), bvid: sha256(buffer_image)}
        env = boot_env(fake, inst)
        fake.reset_requests()

        r = boot(env, "--dry-run")
        assert r["dry_run"] is True
        own = r["own_volume"]
        assert own["volume_id"] == bvid and own["formatted"] and own["mounted_now"]      # would be
        assert own["delete_on_termination_cleared"] and own["tags_written"]
        assert outcomes(r) == {vid: "would-recover"}
        assert by_volume(r)[vid]["mount_path"] == f"{env['LIFEBOAT_RECOVERY_ROOT']}/{vid}"
        assert by_volume(r)[vid]["previous_owner"] == DEAD_OWNER

        assert mutating(fake) == []
        assert {q["action"] for q in fake.requests("ec2")} == {"DescribeVolumes"}
        for v, b in before.items():
                now = fake.volume(v)
                assert now["tags"] == b["tags"] and now["state"] == b["state"]
                assert [a["delete_on_termination"] for a in now["attachments"]] == \
                        [a["delete_on_termination"] for a in b["attachments"]]
        assert probe(buffer_image) == ""                # not formatted
        assert {v: sha256(p) for v, p in ((vid, image), (bvid, buffer_image))} == digests
        assert mount_of(env["LIFEBOAT_BUFFER_MOUNT"]) is None
        assert mount_of(Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid) is None
        assert snippets(env) == {}
        assert not (Path(env["LIFEBOAT_RUN_DIR"]) / "recovered.json").exists()

        text = run_lifeboat(env, "boot", "--dry-run")
        assert text.returncode == 0, text.stderr
        assert "(dry run)" in text.stdout and f"would recover {vid}" in text.stdout
        assert mutating(fake) == []


def test_json_report_shape(fake, tmp_path):
        inst = add_instance(fake)
        vid, _, _ = orphan(fake, tmp_path, "o", files=chunk_files())
        env = boot_env(fake, inst)
        r = boot(env)
        del r["_stderr"]
        assert set(r) == {"dry_run", "instance_id", "availability_zone", "own_volume", "volumes", "candidates",
                          "timed_out", "imds_requests", "ec2_requests", "elapsed_ms", "exit_code", "error"}
        assert r["error"] is None
        assert r["instance_id"] == inst["instance_id"] and r["availability_zone"] == AZ
        assert r["dry_run"] is False and r["timed_out"] is False and r["exit_code"] == 0
        assert r["candidates"] == 1
        for k in ("imds_requests", "ec2_requests", "elapsed_ms"):
                assert isinstance(r[k], int) and r[k] > 0
        assert set(r["own_volume"]) == {"ready", "volume_id", "device", "node", "mount_path", "fs_type", "fs_uuid",
                                        "formatted", "mounted_now", "delete_on_termination_cleared",
                                        "tags_written", "reason"}
        assert r["own_volume"]["device"] == "/dev/sdf" and r["own_volume"]["reason"] == ""
        [v] = r["volumes"]
        assert set(v) == {"volume_id", "outcome", "device", "node", "mount_path", "previous_owner",
                          "config_file", "winner", "reason"}
        assert all(isinstance(x, str) for x in v.values())
        assert v["volume_id"] == vid and v["outcome"] == "recovered" and v["winner"] == "" and v["reason"] == ""
        assert v["device"].startswith("/dev/xvd") and v["node"].startswith(inst["dev_root"] + "/nvme")


def test_imds_unreachable_fails_fast_with_one_line(fake):
        inst = add_instance(fake)
        env = boot_env(fake, inst)
        import socket
        with socket.socket() as s:                      # a port nobody listens on
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{port}"
        fake.reset_requests()

        start = time.monotonic()
        r = run_lifeboat(env, "boot", timeout=30)
        took = time.monotonic() - start
        assert r.returncode == 3, (r.stdout, r.stderr)
        assert took < 5, f"took {took:.1f}s to notice IMDS is not there"
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, r.stderr
        assert f"127.0.0.1:{port}" in lines[0] and "IMDS" in lines[0] and "no answer" in lines[0]
        assert r.stdout == ""                           # no report of a run that never started
        assert fake.requests() == []
        assert mount_of(env["LIFEBOAT_BUFFER_MOUNT"]) is None

        j = run_lifeboat(env, "boot", "--json", timeout=30)
        assert j.returncode == 3 and json.loads(j.stdout)["exit_code"] == 3


def test_invalid_setting_exits_2_naming_the_key(fake):
        inst = add_instance(fake)
        env = boot_env(fake, inst, LIFEBOAT_FS="btrfs")
        fake.reset_requests()
        r = run_lifeboat(env, "boot")
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "LIFEBOAT_FS" in r.stderr and "btrfs" in r.stderr
        assert fake.requests() == []
        r = run_lifeboat(env, "boot", "--no-such-flag")
        assert r.returncode == 2


# --------------------------------------------------------------------------
# concurrency and crashes
# --------------------------------------------------------------------------

@pytest.mark.parametrize("max_recover", ["6", "3"])
def test_two_instances_race_for_the_same_volumes(fake, tmp_path, max_recover):
        """Two boots at the same moment, in the same AZ, both after the same 6 volumes.
        With LIFEBOAT_MAX_RECOVER=3 a loser must go on to the volumes nobody took."""
        fake.config(attach_delay_ms=300)
        insts = [add_instance(fake, buffer=False) for _ in range(2)]
        envs = [boot_env(fake, i, LIFEBOAT_MAX_RECOVER=max_recover) for i in insts]
        vols = {}
        for n in range(6):
                files = chunk_files()
                vid, _, _ = orphan(fake, tmp_path, f"r{n}", files=files)
                vols[vid] = files

        procs = [subprocess.Popen([lbtest.lifeboat_bin(), "boot", "--json"], env=e, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for e in envs]
        results = []
        for p in procs:
                try:
                        out, err = p.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                        p.kill()
                        p.communicate()
                        raise
                results.append((p.returncode, out, err))
        reports = []
        for code, out, err in results:
                assert code == 0, f"exit {code}\n{out}\n{err}"
                reports.append(json.loads(out))

        manifests = [manifest(e) for e in envs]
        recovered_by = {vid: [n for n, r in enumerate(reports) if outcomes(r).get(vid) == "recovered"]
                        for vid in vols}
        for vid, files in vols.items():
                assert len(recovered_by[vid]) == 1, (vid, [outcomes(r) for r in reports])
                n = recovered_by[vid][0]
                assert [vid in m for m in manifests].count(True) == 1
                assert vid in manifests[n]
                assert_recovered(fake, insts[n], envs[n], reports[n], vid, files)
                loser = 1 - n
                lost = outcomes(reports[loser]).get(vid)
                # lost-race: it tried; not-claimed: it was over LIFEBOAT_MAX_RECOVER already.
                assert lost in (None, "lost-race", "not-claimed"), lost
                if lost == "lost-race":
                        assert by_volume(reports[loser])[vid]["winner"] == insts[n]["instance_id"]
                assert mount_of(Path(envs[loser]["LIFEBOAT_RECOVERY_ROOT"]) / vid) is None
                assert f"{vid}.conf" not in snippets(envs[loser])
        assert set(manifests[0]) | set(manifests[1]) == set(vols)
        if max_recover == "3":
                assert [len(m) for m in manifests] == [3, 3]
        assert sum(len(snippets(e)) for e in envs) == 6


def test_kill_9_mid_attach_then_rerun_converges(fake, tmp_path):
        inst = add_instance(fake)
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "k", files=files)
        env = boot_env(fake, inst)
        fake.config(attach_delay_ms=3000)

        p = fake.start_lifeboat(env, "boot")
        fake.wait_for(f"{vid} attaching", lambda: (a := attachment_of(fake, vid)) and a["status"] == "attaching",
                      timeout=30)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=10)
        assert p.returncode == -signal.SIGKILL
        assert mount_of(Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid) is None
        fake.reset_requests()

        r = boot(env)
        assert outcomes(r) == {vid: "recovered"}
        assert_recovered(fake, inst, env, r, vid, files)
        assert fake.requests("ec2", "AttachVolume") == []        # resumed, not attached twice
        # It waited for the attachment the killed run started, polling, not spinning.
        assert len(fake.requests("ec2", "DescribeVolumes")) <= 2 + 8
        assert list(manifest(env)) == [vid] and list(snippets(env)) == [f"{vid}.conf"]

        # And once more: nothing left to do.
        fake.reset_requests()
        r = boot(env)
        assert outcomes(r) == {vid: "already-recovered"}
        assert mutating(fake) == []


def test_kill_9_after_mount_then_rerun_converges(fake, tmp_path):
        """Killed between the mount and the snippet: the rerun finishes the job without
        mounting twice."""
        inst = add_instance(fake)
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "k2", files=files)
        env = boot_env(fake, inst)
        # The snippet's template is a FIFO: boot blocks reading it right after the mount.
        fifo = tmp_path / "template.fifo"
        os.mkfifo(fifo)
        env["LIFEBOAT_FLUENTD_TEMPLATE"] = str(fifo)
        mount_path = Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid

        p = fake.start_lifeboat(env, "boot")
        fake.wait_for(f"{vid} mounted", lambda: mount_of(mount_path), timeout=30)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=10)
        assert snippets(env) == {} and manifest(env) == {}

        env["LIFEBOAT_FLUENTD_TEMPLATE"] = boot_env(fake, inst)["LIFEBOAT_FLUENTD_TEMPLATE"]
        fake.reset_requests()
        r = boot(env)
        assert_recovered(fake, inst, env, r, vid, files)
        assert fake.requests("ec2", "AttachVolume") == []
        assert sum(1 for m in lbtest.mounts() if m["target"] == str(mount_path)) == 1


def test_rerun_after_success_is_a_noop(fake, tmp_path):
        inst = add_instance(fake)
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "o", files=files)
        env = boot_env(fake, inst)
        boot(env)
        conf = Path(env["LIFEBOAT_FLUENTD_CONF_DIR"]) / f"{vid}.conf"
        text, mtime = conf.read_text(), conf.stat().st_mtime_ns
        manifest_text = (Path(env["LIFEBOAT_RUN_DIR"]) / "recovered.json").read_text()
        def my_mounts() -> list[tuple[str, str]]:
                return sorted((m["target"], m["maj:min"]) for m in lbtest.mounts()
                              if lbtest.is_under(m["target"], tmp_path))
        mounts_before = my_mounts()
        assert len(mounts_before) == 2
        fake.reset_requests()

        r = boot(env)
        assert outcomes(r) == {vid: "already-recovered"}
        assert_recovered(fake, inst, env, r, vid, files)
        assert not r["own_volume"]["mounted_now"] and not r["own_volume"]["formatted"]
        assert mutating(fake) == []
        # token, identity, this instance's volumes, dirty candidates, one look at the resumed one
        assert len(fake.requests()) <= 5
        assert conf.read_text() == text and conf.stat().st_mtime_ns == mtime
        assert f'previous owner "{DEAD_OWNER}"' in text
        assert (Path(env["LIFEBOAT_RUN_DIR"]) / "recovered.json").read_text() == manifest_text
        assert my_mounts() == mounts_before
        assert "recovered" not in r["_stderr"]

        # A dry run now sees the same: nothing to do.
        fake.reset_requests()
        d = boot(env, "--dry-run")
        assert outcomes(d) == {vid: "already-recovered"}
        assert not d["own_volume"]["mounted_now"] and not d["own_volume"]["formatted"]
        assert mutating(fake) == []
        t = run_lifeboat(env, "boot", "--dry-run")
        assert "already mounted" in t.stdout and f"already recovered {vid}" in t.stdout, t.stdout


def test_reboot_mounts_everything_again_without_attaching_or_formatting(fake, tmp_path):
        """After a reboot the volumes are still attached but nothing is mounted, and /run
        (the manifest) is gone."""
        inst = add_instance(fake)
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "o", files=files)
        env = boot_env(fake, inst)
        first = boot(env)
        fs_uuid = first["own_volume"]["fs_uuid"]
        for target in (Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid, env["LIFEBOAT_BUFFER_MOUNT"]):
                lbtest.run(["umount", str(target)])
        (Path(env["LIFEBOAT_RUN_DIR"]) / "recovered.json").unlink()
        fake.reset_requests()

        r = boot(env)
        own = r["own_volume"]
        assert own["ready"] and own["mounted_now"] and not own["formatted"] and own["fs_uuid"] == fs_uuid
        assert outcomes(r) == {vid: "recovered"}
        # The owner tag names this instance by now: the previous owner is no longer known.
        assert_recovered(fake, inst, env, r, vid, files, previous_owner="")
        assert [q["action"] for q in fake.requests("ec2")] == ["DescribeVolumes"] * 3


# --------------------------------------------------------------------------
# more ways AWS and the instance can get in the way
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["5xx_after_success", "drop_after_success"])
def test_attach_that_succeeded_behind_an_error_is_recovered(fake, tmp_path, kind):
        """AttachVolume does the attach and still answers 500 (or the answer is lost): the
        retry gets VolumeInUse, and a describe shows the volume is ours."""
        inst = add_instance(fake)
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "o", files=files)
        env = boot_env(fake, inst, LIFEBOAT_EC2_TIMEOUT="3s")
        fake.fault(action="AttachVolume", kind=kind)

        r = boot(env)
        assert_recovered(fake, inst, env, r, vid, files)
        attaches = fake.requests("ec2", "AttachVolume")
        assert attaches[0].get("fault") == kind
        assert len(attaches) == 2 and attaches[1]["status"] == 400     # VolumeInUse


def test_boot_timeout_gives_back_what_is_in_flight(fake, tmp_path):
        inst = add_instance(fake)
        vid, _, _ = orphan(fake, tmp_path, "slow", files=chunk_files())
        fake.config(stuck_attach=[vid])
        env = boot_env(fake, inst, LIFEBOAT_BOOT_TIMEOUT="3s", LIFEBOAT_ATTACH_TIMEOUT="60s")

        start = time.monotonic()
        r = boot(env, expect=1)
        assert time.monotonic() - start < 10
        assert r["timed_out"] is True
        v = by_volume(r)[vid]
        assert v["outcome"] == "left-dirty" and "timeout" in v["reason"]
        vol = fake.wait_volume(vid, "available")
        assert vol["tags"]["lifeboat:state"] == "dirty" and vol["attachments"] == []
        assert r["own_volume"]["ready"]                 # the own buffer came first
        t = run_lifeboat(env, "boot", "--dry-run")
        assert t.returncode == 0


def test_attachment_limit_leaves_the_rest_unattached(fake, tmp_path):
        inst = add_instance(fake, attachment_slots=3)   # root + buffer + one more
        vids = [orphan(fake, tmp_path, f"l{i}", files=chunk_files())[0] for i in range(3)]
        env = boot_env(fake, inst)

        r = boot(env)
        got = outcomes(r)
        assert set(got) == set(vids)
        assert sorted(got.values()) == ["not-claimed", "not-claimed", "recovered"], got
        for vid, o in got.items():
                if o == "recovered":
                        assert_recovered(fake, inst, env, r, vid)
                else:
                        assert "AttachmentLimitExceeded" in by_volume(r)[vid]["reason"]
                        vol = fake.volume(vid)
                        assert vol["attachments"] == [] and vol["tags"]["lifeboat:state"] == "dirty"
        assert len(manifest(env)) == 1


def test_attachment_slots_setting_is_respected(fake, tmp_path):
        inst = add_instance(fake)
        vids = [orphan(fake, tmp_path, f"s{i}", files=chunk_files())[0] for i in range(3)]
        env = boot_env(fake, inst, LIFEBOAT_ATTACHMENT_SLOTS="4")  # root + buffer + two
        r = boot(env)
        assert set(outcomes(r)) == set(vids)
        assert sorted(outcomes(r).values()) == ["not-claimed", "recovered", "recovered"]
        assert len(fake.requests("ec2", "AttachVolume")) == 2
        assert len(manifest(env)) == 2


def test_own_buffer_blank_but_tagged_formatted_is_refused(fake, tmp_path):
        """A blank device whose fs-uuid tag says lifeboat formatted it once is not the volume
        it should be (or its data is gone): never format it."""
        inst = add_instance(fake, buffer={"device": "/dev/sdf", "size_gib": 1,
                                          "tags": {"lifeboat:fs-uuid": str(uuidlib.uuid4())}})
        image = Path(fake.volume(inst["buffer_volume_id"])["image"])
        env = boot_env(fake, inst)
        r = boot(env, expect=3)
        own = r["own_volume"]
        assert not own["ready"] and "refusing to format" in own["reason"]
        assert probe(image) == ""
        assert mount_of(env["LIFEBOAT_BUFFER_MOUNT"]) is None
        assert "CreateTags" not in mutating(fake)


def test_xen_instance_recovers(fake, tmp_path):
        """No NVMe serials on Xen: devices are told apart by name, newness and size."""
        inst = add_instance(fake, device_style="xen")
        vols = {}
        for i in range(3):
                files = chunk_files(i + 1)
                vid, _, _ = orphan(fake, tmp_path, f"x{i}", files=files)
                vols[vid] = files
        env = boot_env(fake, inst)
        r = boot(env)
        assert r["own_volume"]["ready"]
        assert r["own_volume"]["node"] == str(Path(inst["dev_root"]) / "xvdf")
        for vid, files in vols.items():
                assert_recovered(fake, inst, env, r, vid, files)
                v = by_volume(r)[vid]
                # The requested /dev/xvdXY shows up under that very name.
                assert v["node"] == str(Path(inst["dev_root"]) / Path(v["device"]).name)
        assert len({v["node"] for v in r["volumes"]}) == 3


def test_fluentd_reloaded_only_when_snippets_change(fake, tmp_path):
        inst = add_instance(fake)
        vid, _, _ = orphan(fake, tmp_path, "o", files=chunk_files())
        with lbtest.FluentdRpc() as rpc:
                url, calls = rpc.url, rpc.calls
                env = boot_env(fake, inst, LIFEBOAT_FLUENTD_RPC=url)
                boot(env, "--dry-run")
                assert calls == []
                r = boot(env)
                assert outcomes(r) == {vid: "recovered"}
                assert calls == ["/api/config.reload"]
                boot(env)                               # nothing changed: no reload
                assert calls == ["/api/config.reload"]
                blank, _, _ = orphan(fake, tmp_path, "blank", fs=None)
                r = boot(env, expect=1)                 # a quarantine writes no snippet
                assert outcomes(r)[blank] == "quarantined"
                assert calls == ["/api/config.reload"]


def test_two_boots_on_one_instance_take_turns(fake, tmp_path):
        """A boot unit and a hand-run boot at the same moment: the run-dir lock serialises
        them, so the second one finds the work done."""
        fake.config(attach_delay_ms=1000)
        inst = add_instance(fake)
        files = chunk_files()
        vid, _, _ = orphan(fake, tmp_path, "o", files=files)
        env = boot_env(fake, inst)
        procs = [fake.start_lifeboat(env, "boot", "--json") for _ in range(2)]
        reports = []
        for p in procs:
                out, err = p.communicate(timeout=60)
                assert p.returncode == 0, err
                reports.append(json.loads(out))
        assert sorted(outcomes(r)[vid] for r in reports) == ["already-recovered", "recovered"]
        assert sorted(r["own_volume"]["formatted"] for r in reports) == [False, True]
        assert len(fake.requests("ec2", "AttachVolume")) == 1
        [done] = [r for r in reports if outcomes(r)[vid] == "recovered"]
        assert_recovered(fake, inst, env, done, vid, files)


def test_boot_timeout_before_claiming_is_partial(fake, tmp_path):
        inst = add_instance(fake)
        vid, _, _ = orphan(fake, tmp_path, "late", files=chunk_files())
        before = fake.volume(vid)
        env = boot_env(fake, inst, LIFEBOAT_BOOT_TIMEOUT="2s")
        fake.fault(action="DescribeVolumes", kind="latency", latency_ms=1500, count=2)
        r = boot(env, expect=1)
        assert r["timed_out"] is True and r["candidates"] == 1
        v = by_volume(r)[vid]
        assert v["outcome"] == "not-claimed" and v["reason"] == "boot timeout"
        assert_untouched(fake, vid, before)


# --------------------------------------------------------------------------
# what a container with the recovery directory read-write can plant
# --------------------------------------------------------------------------

def test_symlink_planted_at_the_recovery_path_is_never_followed(fake, tmp_path):
        """A container (root, with the recovery directory bind-mounted read-write) plants
        RECOVERY_ROOT/<volume-id> -> /etc/cron.d before the next boot: boot never mounts
        through it; the volume goes back dirty, and the log says why."""
        inst = add_instance(fake)
        files = chunk_files(2)
        vid, image, _ = orphan(fake, tmp_path, "o", files=files)
        env = boot_env(fake, inst)
        host_dir = tmp_path / "host" / "etc" / "cron.d"
        host_dir.mkdir(parents=True)
        (host_dir / "0hourly").write_text("keep me\n")
        before = {p.name: p.read_text() for p in host_dir.iterdir()}
        planted = Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid
        planted.symlink_to(host_dir)
        digest = sha256(image)

        r = boot(env, expect=1)
        v = by_volume(r)[vid]
        assert v["outcome"] == "left-dirty", v
        assert "symlink" in v["reason"], v
        assert f"{vid} left dirty" in r["_stderr"] and "symlink" in r["_stderr"], r["_stderr"]
        assert {p.name: p.read_text() for p in host_dir.iterdir()} == before
        assert mount_of(host_dir) is None and mount_of(planted) is None
        assert planted.is_symlink()
        vol = fake.wait_volume(vid, "available")
        assert vol["tags"]["lifeboat:state"] == "dirty" and "lifeboat:reason" not in vol["tags"]
        assert vid not in manifest(env) and snippets(env) == {}
        assert sha256(image) == digest


def test_symlink_planted_above_the_recovery_path_is_never_followed(fake, tmp_path):
        """The same one level up: the recovery root itself replaced by a symlink (an older task
        definition exposed all of /var/lib/lifeboat to the container)."""
        inst = add_instance(fake)
        vid, _, _ = orphan(fake, tmp_path, "o", files=chunk_files(1))
        env = boot_env(fake, inst)
        host_dir = tmp_path / "host" / "etc" / "systemd" / "system"
        host_dir.mkdir(parents=True)
        root = Path(env["LIFEBOAT_RECOVERY_ROOT"])
        root.rmdir()
        root.symlink_to(host_dir)

        r = boot(env, expect=1)
        v = by_volume(r)[vid]
        assert v["outcome"] == "left-dirty" and "symlink" in v["reason"], v
        assert list(host_dir.iterdir()) == []
        fake.wait_volume(vid, "available")


def test_mount_in_progress_marker_quarantines_the_volume_on_the_next_boot(fake, tmp_path):
        """The machine went down while boot mounted a recovered volume (a crafted filesystem
        can crash the kernel): the marker on the root disk makes the next boot quarantine the
        volume instead of mounting it again. A marker of this very boot (a killed run) is
        no such reason."""
        inst = add_instance(fake)
        files = chunk_files()
        vid, image, _ = orphan(fake, tmp_path, "crash", files=files)
        env = boot_env(fake, inst)
        state_dir = Path(env["LIFEBOAT_STATE_DIR"])
        first = boot(env)
        assert_recovered(fake, inst, env, first, vid, files)
        assert state_dir.is_dir() and list(state_dir.iterdir()) == [], "the marker goes once the mount is done"

        # The reboot: nothing mounted, /run empty, the volume still attached, and the marker
        # an earlier boot left on the root disk.
        for target in (Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid, env["LIFEBOAT_BUFFER_MOUNT"]):
                lbtest.run(["umount", str(target)])
        (Path(env["LIFEBOAT_RUN_DIR"]) / "recovered.json").unlink()
        marker = state_dir / f"{vid}.mounting"
        marker.write_text(json.dumps({"volume": vid, "device": first["volumes"][0]["node"],
                                      "boot_id": "00000000-0000-4000-8000-000000000000",
                                      "time": "2026-11-26T16:12:55Z"}) + "\n")
        digest = sha256(image)

        r = boot(env, expect=1)
        assert_quarantined(fake, inst, env, r, vid, "went down while mounting it")
        assert "2026-11-26T16:12:55Z" in by_volume(r)[vid]["reason"]
        assert "quarantined" in r["_stderr"]
        assert not marker.exists()
        assert sha256(image) == digest

        # A marker written in this boot by a run that was killed: mounted as usual.
        other, _, _ = orphan(fake, tmp_path, "killed", files=files)
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        killed = state_dir / f"{other}.mounting"
        killed.write_text(json.dumps({"volume": other, "device": "", "boot_id": boot_id,
                                      "time": "2026-11-26T16:12:55Z"}) + "\n")
        r2 = boot(env)
        assert outcomes(r2)[other] == "recovered"
        assert not killed.exists()


def test_unusable_mount_point_leaves_the_volume_dirty_not_quarantined(fake, tmp_path):
        """A mount that fails for a reason of this instance (here: the mount point cannot be
        created) says nothing about the volume: it goes back dirty, for the next boot, and
        is not quarantined (which would need a human)."""
        inst = add_instance(fake)
        files = chunk_files(2)
        vid, image, _ = orphan(fake, tmp_path, "o", files=files)
        env = boot_env(fake, inst)
        blocker = Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid
        blocker.write_text("not a directory\n")        # mkdir of the mount point fails
        digest = sha256(image)

        r = boot(env, expect=1)
        v = by_volume(r)[vid]
        assert v["outcome"] == "left-dirty", v
        vol = fake.wait_volume(vid, "available")
        assert vol["tags"]["lifeboat:state"] == "dirty"
        assert "lifeboat:reason" not in vol["tags"]
        assert vid not in manifest(env) and f"{vid}.conf" not in snippets(env)
        assert sha256(image) == digest

        # Once the mount point is usable, the next boot recovers it.
        blocker.unlink()
        r2 = boot(env)
        assert_recovered(fake, inst, env, r2, vid, files)
