# SPDX-License-Identifier: MIT
"""lifeboat reap against the fake AWS: a region with two zones, volumes of the group in every
lifeboat state, races with attaches and with a second reaper, and throttling."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import lbtest
from lbtest import run_lifeboat

GROUP = "test-group"
AZ_A = "us-east-1a"
AZ_B = "us-east-1b"
EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_ATTENTION = 0, 1, 2, 3, 4


def iso_ago(seconds: float) -> str:
        return lbtest.iso_in(-seconds)


def reap_env(fake: lbtest.FakeAWS, tmp_path: Path) -> dict[str, str]:
        return lbtest.reap_env(fake, tmp_path, GROUP)


def group_volume(fake: lbtest.FakeAWS, az: str, state: str | None = None, group: str = GROUP,
                 **kw: Any) -> str:
        """A volume of the group; keyword tags flushed_at=..., available_since=..., reason=...
        become lifeboat:flushed-at etc.; create_time back-dates it."""
        create_time = kw.pop("create_time", None)
        spec: dict[str, Any] = {"availability_zone": az, "tags": lbtest.group_tags(group, state, **kw)}
        if create_time:
                spec["create_time"] = create_time
        return fake.add_volume(**spec)


reap_json = lbtest.reap_json


by_id = lbtest.volumes_by_id


def state_of(fake: lbtest.FakeAWS, vid: str) -> str:
        v = fake.volume(vid)
        assert v is not None, vid
        return v["state"]


def requests(fake: lbtest.FakeAWS, **kw: Any) -> list[dict[str, Any]]:
        """The request log once it stops growing: the fake logs a request just after answering
        it, so the last entries of a lifeboat that just exited may still be on their way."""
        seen = -1
        while True:
                log = fake.requests()
                if len(log) == seen:
                        return fake.requests(**kw)
                seen = len(log)
                time.sleep(0.1)


def deletes(fake: lbtest.FakeAWS, ok_only: bool = True) -> list[dict[str, Any]]:
        return [r for r in requests(fake, action="DeleteVolume") if not ok_only or r["status"] == 200]


def attach(fake: lbtest.FakeAWS, vid: str, iid: str, device: str = "/dev/sdg") -> None:
        a = fake.ec2("AttachVolume", {"VolumeId": vid, "InstanceId": iid, "Device": device})
        assert a.status == 200, a


def start_reap(env: dict[str, str], *args: str) -> subprocess.Popen:
        return subprocess.Popen([lbtest.lifeboat_bin(), "reap", "--json", *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, timeout: float = 60) -> tuple[int, dict[str, Any], str]:
        try:
                out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                pytest.fail(f"reap did not finish within {timeout}s:\n{out}\n{err}")
        try:
                doc = json.loads(out)
        except json.JSONDecodeError:
                pytest.fail(f"reap --json printed no JSON (exit {p.returncode}):\n{out}\n{err}")
        return p.returncode, doc, err


# --------------------------------------------------------------------------


def test_region_wide_plan_across_two_zones(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        old_a = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(30 * 60))
        old_b = group_volume(fake, AZ_B, "flushed", flushed_at=iso_ago(3 * 3600))
        young = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(120))
        no_flushed_at = group_volume(fake, AZ_B, "flushed")
        stranded = group_volume(fake, AZ_A, "dirty", available_since=iso_ago(2 * 3600))
        waiting = group_volume(fake, AZ_B, "dirty")
        quarantined = group_volume(fake, AZ_B, "quarantined", reason="two filesystem signatures")
        unused = group_volume(fake, AZ_A, create_time=iso_ago(5 * 3600))
        other_group = group_volume(fake, AZ_A, "flushed", group="other-group", flushed_at=iso_ago(5 * 3600))
        untagged = fake.add_volume(availability_zone=AZ_A)
        # A flushed volume that an instance still has attached (its buffer volume).
        inst = fake.add_instance(availability_zone=AZ_A, buffer={"tags": {
                "lifeboat:group": GROUP, "lifeboat:state": "flushed", "lifeboat:flushed-at": iso_ago(3600)}})
        attached = inst["buffer_volume_id"]

        p, doc = reap_json(env)
        assert p.returncode == EXIT_ATTENTION, p.stderr
        assert doc["needs_attention"] is True
        assert doc["availability_zone"] is None and doc["region"] == fake.region and doc["group"] == GROUP
        assert doc["dry_run"] is False and doc["min_age_s"] == 600 and doc["stranded_after_s"] == 3600
        vols = by_id(doc)
        assert set(vols) == {old_a, old_b, young, no_flushed_at, stranded, waiting, quarantined, unused, attached}
        expect = {old_a: "deleted", old_b: "deleted", young: "kept", no_flushed_at: "kept", stranded: "stranded",
                  waiting: "kept", quarantined: "quarantined", unused: "unused", attached: "kept"}
        assert {vid: v["category"] for vid, v in vols.items()} == expect
        assert doc["counts"] == {"deleted": 2, "would-delete": 0, "skipped": 0, "failed": 0, "kept": 4,
                                 "stranded": 1, "quarantined": 1, "unused": 1, "relocating": 0}
        assert vols[young]["reason"].startswith("too young: flushed 2m")
        assert vols[no_flushed_at]["reason"] == "no flushed-at tag"
        assert vols[quarantined]["reason"] == "two filesystem signatures"
        assert vols[attached]["reason"].startswith(f"attached to {inst['instance_id']}")
        assert "no instance in us-east-1a recovered it" in vols[stranded]["reason"]
        assert vols[old_b]["availability_zone"] == AZ_B and vols[old_b]["lifeboat_state"] == "flushed"
        assert vols[old_b]["age_s"] >= 3 * 3600

        # Exactly the two old flushed volumes are gone; everything else is untouched.
        assert {r["status"] for r in requests(fake, action="DeleteVolume")} == {200}
        assert len(deletes(fake)) == 2
        for vid in (old_a, old_b):
                assert state_of(fake, vid) == "deleted"
        for vid in (young, no_flushed_at, stranded, waiting, quarantined, unused, other_group, untagged):
                assert state_of(fake, vid) == "available"
        assert state_of(fake, attached) == "in-use"

        # The dirty volume seen available for the first time now carries the mark.
        assert vols[waiting]["tag_action"] == "set-available-since" and vols[waiting]["tag_action_done"]
        mark = fake.volume(waiting)["tags"]["lifeboat:available-since"]
        assert mark == vols[waiting]["since"]
        assert abs((dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(mark)).total_seconds()) < 60
        assert fake.volume(stranded)["tags"]["lifeboat:available-since"] == vols[stranded]["since"]


def test_az_scope(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        in_a = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        in_b = group_volume(fake, AZ_B, "flushed", flushed_at=iso_ago(3600))
        quarantined_b = group_volume(fake, AZ_B, "quarantined", reason="bad")

        p, doc = reap_json(env, "--az", AZ_A)
        assert p.returncode == EXIT_OK, p.stderr      # the quarantined volume is in the other zone
        assert doc["availability_zone"] == AZ_A
        assert [v["volume_id"] for v in doc["volumes"]] == [in_a]
        assert state_of(fake, in_a) == "deleted"
        assert state_of(fake, in_b) == "available"
        assert state_of(fake, quarantined_b) == "available"

        p, doc = reap_json(env, "--az", AZ_B)
        assert p.returncode == EXIT_ATTENTION
        assert {v["volume_id"]: v["category"] for v in doc["volumes"]} == {in_b: "deleted",
                                                                            quarantined_b: "quarantined"}
        assert state_of(fake, in_b) == "deleted"


def test_dry_run_changes_nothing(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        old = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        young = group_volume(fake, AZ_B, "flushed", flushed_at=iso_ago(60))
        waiting = group_volume(fake, AZ_B, "dirty")
        unused = group_volume(fake, AZ_A, create_time=iso_ago(3600))

        p = run_lifeboat(env, "reap", "--dry-run", "--delete-unused")
        assert p.returncode == EXIT_OK, p.stderr
        out = p.stdout
        assert "dry run" in out
        assert "WOULD DELETE (dry run): 2" in out
        would = out.split("WOULD DELETE (dry run): 2\n")[1].split("\n\n")[0]
        assert old in would and unused in would and young not in would
        assert "KEPT: 2" in out and "too young" in out
        assert f"{waiting}" in out and "[dry run: not tagged]" in out
        assert "2 would be deleted" in out

        p, doc = reap_json(env, "--dry-run", "--delete-unused")
        assert p.returncode == EXIT_OK
        assert doc["dry_run"] is True
        assert {v["volume_id"]: v["category"] for v in doc["volumes"]} == {
                old: "would-delete", young: "kept", waiting: "kept", unused: "would-delete"}
        assert by_id(doc)[waiting]["tag_action"] == "set-available-since"
        assert by_id(doc)[waiting]["tag_action_done"] is False

        # Only reads went out; every volume is as it was.
        assert {r["action"] for r in requests(fake, service="ec2")} == {"DescribeVolumes"}
        for vid in (old, young, waiting, unused):
                v = fake.volume(vid)
                assert v["state"] == "available"
                assert "lifeboat:available-since" not in v["tags"]


def test_text_report_and_exit_codes(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        old = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        p = run_lifeboat(env, "reap")
        assert p.returncode == EXIT_OK, p.stderr
        assert "DELETED: 1" in p.stdout and old in p.stdout and "flushed 1h0m ago" in p.stdout
        assert "reap: 1 deleted, 0 not deleted, 0 kept, 0 stranded, 0 quarantined, 0 unused" in p.stdout
        assert state_of(fake, old) == "deleted"

        # Nothing left: still 0.
        p = run_lifeboat(env, "reap")
        assert p.returncode == EXIT_OK, p.stderr
        assert "no volumes of the group found" in p.stdout

        # A quarantined volume needs a human: exit 4, its reason in the report.
        q = group_volume(fake, AZ_B, "quarantined", reason="fs-uuid mismatch: expected 1234, found 5678")
        p = run_lifeboat(env, "reap")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        section = p.stdout.split("QUARANTINED (need a human): 1\n")[1]
        assert q in section and "reason: fs-uuid mismatch: expected 1234, found 5678" in section
        assert state_of(fake, q) == "available"


def test_usage_errors(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        for args in (["--min-age", "ten minutes"], ["--stranded-after", "-1h"], ["--az", ""], ["surplus"],
                     ["--no-such-option"]):
                p = run_lifeboat(env, "reap", *args)
                assert p.returncode == EXIT_USAGE, (args, p.stdout, p.stderr)
        assert requests(fake, service="ec2") == []
        p = run_lifeboat(env, "reap", "--help")
        assert p.returncode == EXIT_OK and "--delete-unused" in p.stdout


def test_aws_unusable_exits_3(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        fake.fault(action="DescribeVolumes", kind="5xx", status=500, count=-1)
        p, doc = reap_json(env)
        assert p.returncode == EXIT_UNAVAILABLE, p.stderr
        assert doc["volumes"] == [] and doc["error"]
        assert "DescribeVolumes failed" in p.stderr
        assert deletes(fake, ok_only=False) == []

        # No region and IMDS disabled: cannot even start.
        env2 = dict(env)
        del env2["AWS_REGION"]
        p = run_lifeboat(env2, "reap")
        assert p.returncode == EXIT_UNAVAILABLE, p.stderr


def test_stranded_by_available_since_then_cleared_when_attached(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        inst = fake.add_instance(availability_zone=AZ_A)
        dirty = group_volume(fake, AZ_A, "dirty", flushed_at=iso_ago(10 * 3600))

        # First sight: marked, kept, nothing needs a human yet.
        p, doc = reap_json(env, "--stranded-after", "2s")
        assert p.returncode == EXIT_OK, p.stderr
        assert by_id(doc)[dirty]["category"] == "kept"
        first_mark = fake.volume(dirty)["tags"]["lifeboat:available-since"]

        # Still available after --stranded-after: stranded, exit 4; the mark is not moved.
        time.sleep(3.1)
        p, doc = reap_json(env, "--stranded-after", "2s")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        v = by_id(doc)[dirty]
        assert v["category"] == "stranded" and v["since"] == first_mark and v["age_s"] >= 3
        assert v["tag_action"] is None
        assert fake.volume(dirty)["tags"]["lifeboat:available-since"] == first_mark
        assert state_of(fake, dirty) == "available"     # never deleted

        # An instance recovers it: the mark goes, the volume is kept.
        attach(fake, dirty, inst["instance_id"])
        p, doc = reap_json(env, "--stranded-after", "2s")
        assert p.returncode == EXIT_OK, p.stderr
        v = by_id(doc)[dirty]
        assert v["category"] == "kept" and v["tag_action"] == "clear-available-since" and v["tag_action_done"]
        assert "lifeboat:available-since" not in fake.volume(dirty)["tags"]
        assert fake.volume(dirty)["tags"]["lifeboat:state"] == "dirty"


def test_delete_unused_only_when_asked_and_old(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        old = group_volume(fake, AZ_A, create_time=iso_ago(2 * 3600))
        young = group_volume(fake, AZ_B)

        p, doc = reap_json(env)
        assert p.returncode == EXIT_OK, p.stderr      # unused volumes are reported, not alarming
        assert {v["volume_id"]: v["category"] for v in doc["volumes"]} == {old: "unused", young: "unused"}
        assert "--delete-unused" in by_id(doc)[old]["reason"]
        assert deletes(fake, ok_only=False) == []

        p, doc = reap_json(env, "--delete-unused")
        assert p.returncode == EXIT_OK, p.stderr
        assert {v["volume_id"]: v["category"] for v in doc["volumes"]} == {old: "deleted", young: "unused"}
        assert by_id(doc)[young]["reason"].startswith("never used, too young")
        assert state_of(fake, old) == "deleted"
        assert state_of(fake, young) == "available"

        p, doc = reap_json(env, "--delete-unused", "--min-age", "0")
        assert p.returncode == EXIT_OK, p.stderr
        assert state_of(fake, young) == "deleted"


def test_attached_between_describe_and_recheck_is_kept(fake, tmp_path):
        """Attached after the plan was made: the re-describe right before the delete sees it."""
        env = reap_env(fake, tmp_path)
        inst = fake.add_instance(availability_zone=AZ_A)
        target = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        other = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        # The first DescribeVolumes (the plan) answers at once, the second (the re-check) after 3 s.
        fake.fault(action="DescribeVolumes", kind="latency", latency_ms=0, count=1)
        fake.fault(action="DescribeVolumes", kind="latency", latency_ms=3000, count=1)

        proc = start_reap(env)
        fake.wait_for("the plan's DescribeVolumes", lambda: len(fake.requests(action="DescribeVolumes")) >= 1,
                      timeout=20, interval=0.01)
        attach(fake, target, inst["instance_id"])
        rc, doc, err = finish(proc)

        assert rc == EXIT_OK, err
        assert len(requests(fake, action="DescribeVolumes")) == 2
        v = by_id(doc)[target]
        assert v["category"] == "skipped"
        assert v["error"].startswith("changed meanwhile: in-use") and "attached to" in v["error"]
        assert by_id(doc)[other]["category"] == "deleted"
        assert state_of(fake, target) == "in-use"
        assert state_of(fake, other) == "deleted"
        assert len(requests(fake, action="DeleteVolume")) == 1       # never even tried on the attached one


def test_attached_between_recheck_and_delete_is_skipped(fake, tmp_path):
        """Attached in the last moment: DeleteVolume answers VolumeInUse, which is a skip."""
        env = reap_env(fake, tmp_path)
        inst = fake.add_instance(availability_zone=AZ_A)
        target = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        fake.fault(action="DeleteVolume", kind="latency", latency_ms=3000, count=1)

        proc = start_reap(env)
        fake.wait_for("the re-check", lambda: len(fake.requests(action="DescribeVolumes")) >= 2,
                      timeout=20, interval=0.01)
        attach(fake, target, inst["instance_id"])
        rc, doc, err = finish(proc)

        assert rc == EXIT_OK, err
        v = by_id(doc)[target]
        assert v["category"] == "skipped"
        assert v["error"].startswith("attached meanwhile") and "VolumeInUse" in v["error"]
        assert [r["status"] for r in requests(fake, action="DeleteVolume")] == [400]
        assert state_of(fake, target) == "in-use"

        # Text output shows it as kept, with what happened.
        fake.reset_requests()
        p = run_lifeboat(env, "reap")
        assert p.returncode == EXIT_OK
        assert f"attached to {inst['instance_id']}" in p.stdout


def test_two_reapers_at_once(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        flushed = [group_volume(fake, AZ_A if i % 2 else AZ_B, "flushed", flushed_at=iso_ago(3600))
                   for i in range(14)]
        quiet = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(30))
        fake.config(ec2_latency_ms=200)      # keeps both in flight at the same time

        procs = [start_reap(env) for _ in range(2)]
        results = [finish(p) for p in procs]

        deleted_by: list[set[str]] = []
        for rc, doc, err in results:
                assert rc == EXIT_OK, err
                assert doc["counts"]["failed"] == 0
                cats = {v["volume_id"]: v["category"] for v in doc["volumes"] if v["volume_id"] in flushed}
                assert set(cats.values()) <= {"deleted", "skipped"}
                deleted_by.append({vid for vid, c in cats.items() if c == "deleted"})
                assert by_id(doc)[quiet]["category"] == "kept"
        # They really raced: some volumes were taken from under one of them.
        assert sum(doc["counts"]["skipped"] for _, doc, _ in results) > 0
        # Each volume deleted exactly once, by one of the two.
        assert deleted_by[0] | deleted_by[1] == set(flushed)
        assert deleted_by[0] & deleted_by[1] == set()
        assert len(deletes(fake)) == len(flushed)
        assert all(state_of(fake, vid) == "deleted" for vid in flushed)
        assert state_of(fake, quiet) == "available"


def test_throttling_is_ridden_out(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        vols = [group_volume(fake, az, "flushed", flushed_at=iso_ago(3600)) for az in (AZ_A, AZ_B, AZ_B)]
        waiting = group_volume(fake, AZ_A, "dirty")
        fake.fault(action="DescribeVolumes", kind="throttle", count=2)
        fake.fault(action="CreateTags", kind="throttle", count=1)
        fake.fault(action="DeleteVolume", kind="throttle", count=4)

        p, doc = reap_json(env)
        assert p.returncode == EXIT_OK, p.stderr
        assert doc["counts"]["deleted"] == 3
        assert all(state_of(fake, vid) == "deleted" for vid in vols)
        assert "lifeboat:available-since" in fake.volume(waiting)["tags"]
        throttled = [r for r in requests(fake, service="ec2") if r.get("fault") == "throttle"]
        assert len(throttled) == 7
        assert fake.faults() == []


def test_throttled_past_retries_is_reported(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        vid = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        fake.fault(action="DeleteVolume", kind="throttle", count=-1)

        p, doc = reap_json(env)
        assert p.returncode == EXIT_PARTIAL, p.stderr
        v = by_id(doc)[vid]
        assert v["category"] == "failed"
        assert v["error"].startswith("not deleted: throttled") and "RequestLimitExceeded" in v["error"]
        assert len(requests(fake, action="DeleteVolume")) == 3        # the standard mode's attempts
        assert state_of(fake, vid) == "available"

        fake.reset_faults()
        p = run_lifeboat(env, "reap")
        assert p.returncode == EXIT_OK, p.stderr
        assert state_of(fake, vid) == "deleted"


# --------------------------------------------------------------------------
# metrics: reap --metrics against the fake CloudWatch
# --------------------------------------------------------------------------

METRICS = ("DirtyAvailable", "Stranded", "Quarantined", "Deleted", "DeletionsFailed", "Relocating", "Relocated")


def metrics_env(fake: lbtest.FakeAWS, tmp_path: Path, **settings: str) -> dict[str, str]:
        return {**reap_env(fake, tmp_path), "AWS_ENDPOINT_URL_CLOUDWATCH": fake.cloudwatch_endpoint, **settings}


def expected_counts(doc: dict[str, Any], zone: str | None) -> dict[str, int]:
        """What each metric must say for a zone (None: the whole group), from reap's own report."""
        vols = [v for v in doc["volumes"] if zone is None or v["availability_zone"] == zone]
        cat = [v["category"] for v in vols]
        return {
                "DirtyAvailable": sum(v["lifeboat_state"] == "dirty" and v["status"] == "available" for v in vols),
                "Stranded": cat.count("stranded"),
                "Quarantined": cat.count("quarantined"),
                "Deleted": cat.count("deleted"),
                "DeletionsFailed": cat.count("failed"),
                "Relocating": cat.count("relocating"),
                "Relocated": sum(v["lifeboat_state"] == "relocated" for v in vols),
        }


def published(fake: lbtest.FakeAWS, namespace: str = "Lifeboat") -> dict[tuple[str, str | None], float]:
        """{(metric, zone or None for the group's own): value} of what CloudWatch took; each once."""
        out: dict[tuple[str, str | None], float] = {}
        for d in fake.metrics(namespace):
                dims = d["dimensions"]
                assert dims["Group"] == GROUP and set(dims) <= {"Group", "AvailabilityZone"}, d
                key = (d["metric_name"], dims.get("AvailabilityZone"))
                assert key not in out, f"{key} published twice"
                assert d["unit"] == "Count" and d["storage_resolution"] == 60, d
                out[key] = d["value"]
        return out


def test_metrics_match_what_reap_reported(fake, tmp_path):
        env = metrics_env(fake, tmp_path)
        group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(7200))
        group_volume(fake, AZ_B, "flushed", flushed_at=iso_ago(3600))
        group_volume(fake, AZ_A, "dirty", available_since=iso_ago(3 * 3600))       # stranded
        group_volume(fake, AZ_B, "dirty")                                            # waiting
        group_volume(fake, AZ_B, "quarantined", reason="foreign filesystem")
        group_volume(fake, AZ_B, "quarantined", reason="blank")
        group_volume(fake, AZ_A, create_time=iso_ago(3600))                          # unused
        group_volume(fake, AZ_A, "flushed", group="other-group", flushed_at=iso_ago(3600))
        group_volume(fake, AZ_B, "relocated", relocated_to="vol-0123456789abcdef0",    # moved, too young
                     relocated_at=iso_ago(60))
        inst = fake.add_instance(availability_zone=AZ_A, buffer={"tags": lbtest.group_tags(GROUP, "dirty")})

        p, doc = reap_json(env, "--metrics")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        assert doc["metrics"] == {"namespace": "Lifeboat", "skipped": None, "datapoints": 3 * len(METRICS),
                                  "published": 3 * len(METRICS),
                                  "requests": 1, "error": None}
        assert inst["buffer_volume_id"] in by_id(doc)    # dirty but in use: not DirtyAvailable
        # A unit that does not fail on 4 (the timer) still shows it: a warning in the journal.
        assert f"1 stranded and 2 quarantined volumes of group {GROUP} need a human" in p.stderr
        assert doc["error"] is None, "a warning, not an error"

        got = published(fake)
        want = {(m, z): float(n) for z in (AZ_A, AZ_B, None) for m, n in expected_counts(doc, z).items()}
        assert got == want
        # The numbers themselves, not only their agreement with the report.
        assert [got[(m, None)] for m in METRICS] == [2, 1, 2, 3, 0, 0, 1]
        assert [got[(m, AZ_A)] for m in METRICS] == [1, 1, 0, 2, 0, 0, 0]
        # Every datapoint carries the time of the plan.
        assert {d["timestamp"] for d in fake.metrics()} == {doc["now"]}
        # Signed for "monitoring" with reap's own credentials, and taken.
        calls = requests(fake, action="PutMetricData")
        assert [(c["service"], c["status"], c["instance"]) for c in calls] == [
                ("monitoring", 200, lbtest.STATIC_ACCESS_KEY)]


def test_failed_deletions_are_counted(fake, tmp_path):
        env = metrics_env(fake, tmp_path)
        vid = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        fake.fault(action="DeleteVolume", kind="throttle", count=-1)
        p, doc = reap_json(env, "--metrics")
        assert p.returncode == EXIT_PARTIAL, p.stderr
        assert by_id(doc)[vid]["category"] == "failed" and doc["metrics"]["published"] == 2 * len(METRICS)
        got = published(fake)
        assert got[("DeletionsFailed", AZ_A)] == got[("DeletionsFailed", None)] == 1
        assert got[("Deleted", AZ_A)] == got[("Deleted", None)] == 0


def test_metrics_of_one_zone_and_the_setting(fake, tmp_path):
        """LIFEBOAT_METRICS turns them on, LIFEBOAT_METRICS_NAMESPACE names the namespace; a run
        limited to a zone publishes that zone alone (it cannot know the group's totals), zeros
        included, also when the zone has no volume at all."""
        env = metrics_env(fake, tmp_path, LIFEBOAT_METRICS="true", LIFEBOAT_METRICS_NAMESPACE="Team/Spot Logs")
        group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        group_volume(fake, AZ_B, "quarantined", reason="bad")

        p = run_lifeboat(env, "reap", "--az", AZ_A)
        assert p.returncode == EXIT_OK, p.stderr
        assert f"metrics: {len(METRICS)} datapoints published to CloudWatch namespace Team/Spot Logs" in p.stdout
        assert published(fake, "Team/Spot Logs") == {(m, AZ_A): float(m == "Deleted") for m in METRICS}

        fake.reset_metrics()
        p, doc = reap_json(env, "--az", "us-east-1c")
        assert p.returncode == EXIT_OK and doc["volumes"] == []
        assert published(fake, "Team/Spot Logs") == {(m, "us-east-1c"): 0.0 for m in METRICS}
        assert fake.metrics("Lifeboat") == []


def test_metrics_failure_is_reported_and_changes_nothing_reap_did(fake, tmp_path):
        env = metrics_env(fake, tmp_path)
        old = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        fake.fault(action="PutMetricData", kind="5xx", count=-1)

        p, doc = reap_json(env, "--metrics")
        # The deletion stands; the missing report to CloudWatch is a partial failure.
        assert p.returncode == EXIT_PARTIAL, p.stderr
        assert by_id(doc)[old]["category"] == "deleted" and state_of(fake, old) == "deleted"
        m = doc["metrics"]
        assert m["published"] == 0 and m["datapoints"] == 2 * len(METRICS) and m["requests"] == 3  # standard retries
        assert m["error"].startswith("InternalServiceError")
        assert doc["error"].startswith(f"Publishing the metrics to CloudWatch failed (0 of {2 * len(METRICS)} "
                                       "datapoints taken)")
        assert "Publishing the metrics to CloudWatch failed" in p.stderr
        assert fake.metrics() == []

        # A human is needed anyway: 4 still wins.
        group_volume(fake, AZ_B, "quarantined", reason="bad")
        p = run_lifeboat(env, "reap", "--metrics")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        assert f"metrics: 0 of {2 * len(METRICS)} datapoints published" in p.stdout and "InternalServiceError" in p.stdout

        # CloudWatch unreachable: the same.
        fake.reset_faults()
        env["AWS_ENDPOINT_URL_CLOUDWATCH"] = "http://127.0.0.1:9"
        p, doc = reap_json(env, "--metrics")
        assert p.returncode == EXIT_ATTENTION and doc["metrics"]["published"] == 0 and doc["metrics"]["error"]


def test_dry_run_publishes_nothing(fake, tmp_path):
        env = metrics_env(fake, tmp_path)
        group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        p, doc = reap_json(env, "--metrics", "--dry-run")
        assert p.returncode == EXIT_OK, p.stderr
        assert doc["metrics"]["skipped"] == "dry run" and doc["metrics"]["published"] == 0
        assert requests(fake, action="PutMetricData") == []
        # Without --metrics (and without the setting) the key is null and nothing is sent.
        p, doc = reap_json(env)
        assert p.returncode == EXIT_OK and doc["metrics"] is None
        assert requests(fake, action="PutMetricData") == []


# --------------------------------------------------------------------------
# the per-instance timer: this instance's zone only
# --------------------------------------------------------------------------

def unit_exec_start() -> list[str]:
        """The shipped reap unit's command line, with this build's binary."""
        unit = (lbtest.SOURCE_DIR / "packaging/systemd/lifeboat-reap.service").read_text()
        [line] = [l for l in unit.splitlines() if l.startswith("ExecStart=")]
        argv = shlex.split(line.split("=", 1)[1])
        assert argv[0] == "/usr/sbin/lifeboat"
        return [lbtest.lifeboat_bin(), *argv[1:]]


def test_timer_reaps_only_this_instances_zone(fake, tmp_path):
        inst = fake.add_instance(availability_zone=AZ_B)
        env = fake.env_for(inst)
        here = group_volume(fake, AZ_B, "flushed", flushed_at=iso_ago(3600))
        elsewhere = group_volume(fake, AZ_A, "flushed", flushed_at=iso_ago(3600))
        quarantined_elsewhere = group_volume(fake, AZ_A, "quarantined", reason="bad")

        argv = unit_exec_start()
        p = subprocess.run([*argv, "--json"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == EXIT_OK, p.stderr     # the other zone's quarantined volume is not ours
        doc = json.loads(p.stdout)
        assert doc["availability_zone"] == AZ_B
        assert [v["volume_id"] for v in doc["volumes"]] == [here]
        assert state_of(fake, here) == "deleted"
        assert state_of(fake, elsewhere) == "available" and state_of(fake, quarantined_elsewhere) == "available"
        [describe] = requests(fake, action="DescribeVolumes")[:1]
        assert describe["status"] == 200

        # With LIFEBOAT_METRICS on the instance, the zone's metrics, and no group totals.
        p = subprocess.run(argv, env={**env, "LIFEBOAT_METRICS": "true"}, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == EXIT_OK, p.stderr
        assert set(published(fake)) == {(m, AZ_B) for m in METRICS}


def test_this_az_needs_imds_and_excludes_az(fake, tmp_path):
        env = reap_env(fake, tmp_path)       # IMDS disabled
        p, doc = reap_json(env, "--this-az")
        assert p.returncode == EXIT_UNAVAILABLE and "instance metadata service unavailable" in doc["error"]
        p, doc = reap_json(env, "--this-az", "--az", AZ_A)
        assert p.returncode == EXIT_USAGE and "exclude each other" in doc["error"]
        assert requests(fake, service="ec2") == []
