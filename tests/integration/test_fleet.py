# SPDX-License-Identifier: MIT
"""A fleet boots at once: ten instances of a group start `lifeboat boot` in the same moment
and find the same forty dirty volumes (a whole pool reclaimed, its replacements launched
together). AttachVolume is the only lock: every volume must end up recovered by exactly one
instance, none quarantined, none left attached and unmounted, every boot exits 0. Barriers in
the fake make the start and the first wave of AttachVolume truly simultaneous. Timings are
scripts/bench's business; these tests assert outcomes and request counts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import lbtest
from lbtest import mount_of

MASK64 = (1 << 64) - 1

AZ = "us-east-1a"
GROUP = "test-group"
DEAD_OWNER = "i-0dead0000beef0001"
INSTANCES = 10
PER_INSTANCE = 4                        # LIFEBOAT_MAX_RECOVER's default
VOLUMES = INSTANCES * PER_INSTANCE


def fnv1a64(data: bytes, h: int) -> int:
        for byte in data:
                h = ((h ^ byte) * 0x100000001b3) & MASK64
        return h


def fmix64(h: int) -> int:
        h ^= h >> 33
        h = (h * 0xff51afd7ed558ccd) & MASK64
        h ^= h >> 33
        h = (h * 0xc4ceb9fe1a85ec53) & MASK64
        return h ^ (h >> 33)


def rendezvous_order(instance_id: str, volume_ids: list[str]) -> list[str]:
        """The order in which lifeboat on instance_id walks these candidates: highest
        fmix64(FNV-1a64(instance "\0" volume)) first (lifeboat/basic/hash.h), ties by id."""
        def weight(vid: str) -> int:
                return fmix64(fnv1a64(vid.encode(), fnv1a64(instance_id.encode() + b"\0", 0xcbf29ce484222325)))
        return sorted(volume_ids, key=lambda vid: (-weight(vid), vid))


def chunk_name(n: int) -> str:
        return f"s3/buffer.b{n:032x}.log"


def dirty_volumes(fake, tmp_path: Path) -> dict[str, bytes]:
        """VOLUMES dirty volumes of the group, each with one chunk naming it: {volume id: chunk}.
        Thin ext4 (under 1 MiB of disk each; forty xfs images would cost 2.6 GB)."""
        vols = {}
        for n in range(VOLUMES):
                content = f"chunk of dirty volume {n}\n".encode()
                vid, _ = fake.add_orphan(tmp_path / "images" / f"v{n}.img", GROUP, DEAD_OWNER, fs="ext4", thin=True,
                                         files={chunk_name(n): content}, availability_zone=AZ)
                vols[vid] = content
        return vols


def boot_fleet(fake, envs: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Starts every boot at once and waits for all; returns their JSON reports."""
        procs = [subprocess.Popen([lbtest.lifeboat_bin(), "boot", "--json"], env=e, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for e in envs]
        results = []
        try:
                for p in procs:
                        out, err = p.communicate(timeout=180)
                        results.append((p.returncode, out, err))
        finally:
                for p in procs:
                        if p.poll() is None:
                                p.kill()
                                p.communicate()
        reports = []
        for code, out, err in results:
                assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
                report = json.loads(out)
                assert report["exit_code"] == 0
                reports.append(report)
        return reports


def start_fleet(fake, **settings: str) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        insts = [fake.add_instance(availability_zone=AZ) for _ in range(INSTANCES)]
        envs = []
        for inst in insts:
                env = fake.env_for(inst, LIFEBOAT_GROUP=GROUP, LIFEBOAT_FLUENTD_RPC="", LIFEBOAT_BOOT_TIMEOUT="60s",
                                   LIFEBOAT_DEVICE_TIMEOUT="10s", **settings)
                envs.append(env)
        # The same moment: every instance's first DescribeVolumes (its own volumes) waits for the
        # others', and the first wave of AttachVolume (4 from each) is answered all together.
        fake.fault(action="DescribeVolumes", kind="barrier", count=INSTANCES, timeout_ms=60000)
        fake.fault(action="AttachVolume", kind="barrier", count=VOLUMES, timeout_ms=60000)
        return insts, envs


def assert_shared_out_exactly_once(fake, insts: list[dict[str, Any]], envs: list[dict[str, str]],
                                   reports: list[dict[str, Any]], vols: dict[str, bytes]) -> None:
        ec2 = fake.requests("ec2")
        assert not [q for q in ec2 if q.get("barrier") == "broken"], "a barrier timed out"
        assert len([q for q in ec2 if q.get("barrier") == "released"]) == INSTANCES + VOLUMES

        owner_of = {}
        for n, (inst, env, report) in enumerate(zip(insts, envs, reports)):
                outcomes = {v["volume_id"]: v for v in report["volumes"]}
                mine = [vid for vid, v in outcomes.items() if v["outcome"] == "recovered"]
                assert len(mine) == PER_INSTANCE, (inst["instance_id"], outcomes)
                bad = [v for v in report["volumes"] if v["outcome"] not in ("recovered", "lost-race", "not-claimed")]
                assert bad == [], bad
                for v in report["volumes"]:
                        if v["outcome"] == "lost-race":
                                assert v["winner"] and v["winner"] != inst["instance_id"], v
                manifest = json.loads((Path(env["LIFEBOAT_RUN_DIR"]) / "recovered.json").read_text())
                assert sorted(e["volume_id"] for e in manifest["volumes"]) == sorted(mine)
                snippets = sorted(p.stem for p in Path(env["LIFEBOAT_FLUENTD_CONF_DIR"]).glob("*.conf"))
                assert snippets == sorted(mine)
                for vid in mine:
                        assert vid not in owner_of, f"{vid} recovered by two instances"
                        owner_of[vid] = n

        assert sorted(owner_of) == sorted(vols), "every volume recovered, by exactly one instance"
        for vid, content in vols.items():
                n = owner_of[vid]
                v = fake.volume(vid)
                assert v["tags"]["lifeboat:state"] == "dirty", v["tags"]           # none quarantined
                assert v["tags"]["lifeboat:owner"] == insts[n]["instance_id"]
                assert len(v["attachments"]) == 1, v
                att = v["attachments"][0]
                assert att["instance_id"] == insts[n]["instance_id"] and att["status"] == "attached", att
                path = Path(envs[n]["LIFEBOAT_RECOVERY_ROOT"]) / vid
                m = mount_of(path)
                assert m is not None and m["maj:min"] == att["rdev"], (vid, m, att)
                assert (path / chunk_name(list(vols).index(vid))).read_bytes() == content
                for other, env in enumerate(envs):
                        if other != n:
                                assert mount_of(Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid) is None
        # None left attached and unmounted: every attachment of a group volume is one of the above.
        for v in fake.volumes():
                if v["tags"].get("lifeboat:group") == GROUP:
                        assert len(v["attachments"]) <= 1 and v["volume_id"] in owner_of, v


def lost_attaches(fake) -> int:
        return len([q for q in fake.requests("ec2", "AttachVolume") if q["status"] == 400])


def test_ten_instances_share_forty_volumes(fake, tmp_path):
        fake.config(attach_delay_ms=300)
        vols = dirty_volumes(fake, tmp_path)
        insts, envs = start_fleet(fake)

        reports = boot_fleet(fake, envs)

        assert_shared_out_exactly_once(fake, insts, envs, reports, vols)
        # Each instance walks the volumes in an order of its own: about 4N/e of the 40 attaches
        # of the first wave collide, and the lookahead describe after a loss keeps later ones
        # off volumes taken meanwhile. Measured: 14 to 26 lost (about 2 N); one shared order
        # loses about 22 N. (scripts/bench holds the target, 3 N; this bound leaves room for
        # chance, the instance ids are random.)
        attaches = fake.requests("ec2", "AttachVolume")
        lost = lost_attaches(fake)
        assert lost <= 4 * INSTANCES, f"{lost} attaches lost"
        assert len(attaches) == VOLUMES + lost
        assert all(q["status"] in (200, 400) for q in attaches)
        # A loss costs one settle DescribeVolumes per batch, not one per volume: per instance,
        # its own volumes, the candidates, and the settles and polls of at most a few rounds.
        per_instance = len(fake.requests("ec2", "DescribeVolumes")) / INSTANCES
        assert per_instance <= 8, f"{per_instance:.1f} DescribeVolumes per instance"


def test_ten_instances_converge_through_throttling(fake, tmp_path):
        """EC2's rate limit (a token bucket per action, far below what ten instances ask for at
        once): throttled requests are sent again, nothing is lost, nothing recovered twice."""
        fake.config(attach_delay_ms=300)
        vols = dirty_volumes(fake, tmp_path)
        insts, envs = start_fleet(fake)
        fake.throttle("*", capacity=8, refill_per_s=8)

        reports = boot_fleet(fake, envs)

        assert_shared_out_exactly_once(fake, insts, envs, reports, vols)
        throttled = [q for q in fake.requests("ec2") if q.get("fault") == "token_bucket"]
        assert {q["action"] for q in throttled} >= {"AttachVolume", "DescribeVolumes"}, throttled
        assert all(q["status"] == 503 for q in throttled)
        state = fake.throttles()["buckets"]
        assert state["AttachVolume"]["allowed"] == VOLUMES + lost_attaches(fake)


def test_lost_race_is_settled_with_one_describe_in_own_order(fake, tmp_path):
        """Another instance takes the first and the third volume of this instance's order while
        its first AttachVolume wave (two volumes) is in flight: the lost attach costs one settle
        DescribeVolumes, which also shows the third taken, so the next attach goes to the fourth
        at once; the third is never attached, nothing starts over from the top of a list."""
        vols = [fake.add_orphan(tmp_path / "images" / f"o{n}.img", GROUP, DEAD_OWNER, fs="ext4", thin=True,
                                availability_zone=AZ)[0] for n in range(6)]
        inst = fake.add_instance(availability_zone=AZ)
        other = fake.add_instance(availability_zone=AZ)
        env = fake.env_for(inst, LIFEBOAT_GROUP=GROUP, LIFEBOAT_FLUENTD_RPC="", LIFEBOAT_MAX_RECOVER="2")
        order = rendezvous_order(inst["instance_id"], vols)
        fake.fault(action="AttachVolume", kind="latency", latency_ms=1500, count=2)
        fake.reset_requests()

        p = fake.start_lifeboat(env, "boot", "--json")
        # Both attaches of the first wave arrived (they took the fault) and wait out its latency.
        fake.wait_for("the first AttachVolume wave", lambda: fake.faults() == [], timeout=30)
        for n, vid in enumerate((order[0], order[2])):
                a = fake.ec2("AttachVolume", {"VolumeId": vid, "InstanceId": other["instance_id"],
                                              "Device": f"/dev/xvd{'fg'[n]}"})
                assert a.status == 200, a.text
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (out, err)

        report = {v["volume_id"]: v for v in json.loads(out)["volumes"]}
        assert {vid for vid, v in report.items() if v["outcome"] == "recovered"} == {order[1], order[3]}
        for vid in (order[0], order[2]):
                assert report[vid]["outcome"] == "lost-race" and report[vid]["winner"] == other["instance_id"]
        assert {report[vid]["outcome"] for vid in order[4:]} == {"not-claimed"}
        for vid in (order[1], order[3]):
                m = mount_of(Path(env["LIFEBOAT_RECOVERY_ROOT"]) / vid)
                assert m is not None and m["maj:min"] == fake.volume(vid)["attachments"][0]["rdev"]
        assert [a["instance_id"] for a in fake.volume(order[2])["attachments"]] == [other["instance_id"]]

        ec2 = fake.requests("ec2")
        attaches = [q for q in ec2 if q["action"] == "AttachVolume"]
        # lifeboat's two, the other instance's two, and lifeboat's one for the fourth volume.
        assert len(attaches) == 5 and [q["status"] for q in attaches].count(400) == 1, attaches
        last = max(attaches, key=lambda q: q["t"])
        first_wave = sorted(q["t"] for q in attaches if q.get("fault") == "latency")
        settles = [q for q in ec2 if q["action"] == "DescribeVolumes" and first_wave[-1] < q["t"] < last["t"]]
        assert len(settles) == 1, settles
        assert last["t"] - settles[0]["t"] < 1.0        # at once, not after a poll interval
