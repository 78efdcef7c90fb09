#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The benchmark scripts/bench runs: lifeboat boot and watch against the fake AWS with
injected latency, on real loop devices and filesystems.

boot, for K = 0, 1, 8, 32 dirty volumes to recover (each K several runs, medians):
  wall time of `lifeboat boot`, HTTP requests by kind (from the fake's request log),
  peak RSS (/usr/bin/time -v), the attach phase, and the lower bound for the same work
  (see lower_bound_ms, which includes the slowest single mount of the K xfs images). Every
  run boots a new instance with a blank own buffer volume, like a fresh launch; the K
  volumes are put back (dirty, detached) between runs.
watch: notice -> flush request latency (default LIFEBOAT_POLL_INTERVAL, the notice at a
  random phase of the poll), and CPU used while idle (utime + stime from /proc/PID/stat).
fleet, for N = 1, 10, 20 instances booting at once (medians over --fleet-runs runs):
  N recovery-only instances of one group start `lifeboat boot` together and find the same
  4N dirty volumes (0.5 s attach latency; barriers in the fake on the first DescribeVolumes
  of each and on the first wave of AttachVolume, so that they really meet); the slowest and
  the median boot, the EC2 calls of all of them, and the attaches lost to another instance.
  In the same run a control: the same N instances at once, each over 4 volumes of a group of
  its own (nothing to fight over). The difference is what claiming costs. The volumes are
  thin ext4 images (lbtest THIN_EXT4: under 1 MiB of disk each).

Disk: every fake's images are deleted as soon as its numbers are taken, and the fake
instances' sysfs and /dev trees are on a tmpfs (see Bench.start_fake).

Usage (scripts/bench runs it as root):
  bench_driver.py --workdir DIR --lifeboat BIN --out results.json [--quick] [--runs N]
                  [--ks 0,1,8,32] [--idle SECONDS] [--watch-trials N] [--no-watch]
                  [--fleet 1,10,20] [--fleet-runs N] [--no-fleet]
  bench_driver.py --cleanup DIR

Prints a table, writes JSON (and the same table as Markdown beside it, .md). Timings are
not tests: nothing fails because a target is missed; the table says which are.
Standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lbtest  # tests/, this script's directory, is on sys.path

GROUP = "bench"
BUFFER_DEVICE = "/dev/sdf"
DEAD_OWNER = "i-0dead0000beef0001"
LATENCY = {"imds_latency_ms": 1, "ec2_latency_ms": 30, "attach_delay_ms": 1500}
SLOTS = 40                      # K = 32 plus root and buffer do not fit Nitro's 27
TIME = "/usr/bin/time"

TARGET_IDLE_REQUESTS = 6        # nothing to recover: at most this many HTTP requests
TARGET_RATIO = 1.3              # boot wall <= 1.3 x the lower bound, at K = 8 and 32
TARGET_RATIO_KS = (8, 32)
TARGET_RSS_KIB = 8 * 1024       # peak RSS <= 8 MiB

FLEET_LATENCY = {"imds_latency_ms": 1, "ec2_latency_ms": 30, "attach_delay_ms": 500}
FLEET_PER_INSTANCE = 4          # dirty volumes per instance, LIFEBOAT_MAX_RECOVER's default
FLEET_GROUP = "fleet"
TARGET_FLEET_RATIO = 1.5        # slowest fleet boot <= 1.5 x the control's slowest, at N = 10 and 20
TARGET_FLEET_NS = (10, 20)
TARGET_LOST_PER_INSTANCE = 3    # lost attaches <= 3 N


class BenchError(lbtest.Failure):
        pass


def say(text: str = "") -> None:
        print(text, flush=True)


# --------------------------------------------------------------------------
# the lower bound
# --------------------------------------------------------------------------

def lower_bound_ms(k: int, lat: dict[str, int], mount_ms: float = 0.0) -> dict[str, Any]:
        """The least time the same work can take against these latencies, whatever the
        implementation: the round trips that depend on each other, plus one attach latency,
        plus the slowest single mount.

        IMDS: token, then the identity document (2 round trips).
        EC2: DescribeVolumes of this instance (to find its own buffer volume), then
        ModifyInstanceAttribute (DeleteOnTermination off) and CreateTags (dirty) for the fresh
        own volume, DescribeVolumes of the dirty candidates; with K > 0: one round of AttachVolume
        (all K at once), one attach latency, one DescribeVolumes that sees them attached, and one
        CreateTags round for the new owner (one call can tag all K). With K > 0 the volumes must
        be mounted after their attach: K mounts at once cost at least the slowest one (mount_ms,
        measured by single_mount_ms). Other local work (mkfs, probes) counts as zero."""
        imds = 2
        ec2 = 4 + (3 if k > 0 else 0)
        attach = lat["attach_delay_ms"] if k > 0 else 0
        mount = round(mount_ms, 1) if k > 0 else 0.0
        return {"imds_round_trips": imds, "ec2_round_trips": ec2, "attach_latency_ms": attach,
                "slowest_mount_ms": mount,
                "ms": imds * lat["imds_latency_ms"] + ec2 * lat["ec2_latency_ms"] + attach + mount}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def request_kind(r: dict[str, Any]) -> str:
        if r["service"] == "imds":
                path = r["action"]
                if path.endswith("/api/token"):
                        return "IMDS token"
                if path.endswith("/instance-identity/document"):
                        return "IMDS identity"
                return "IMDS " + path.removeprefix("/latest/meta-data/")
        return r["action"] or "EC2 ?"


KIND_ORDER = ["IMDS token", "IMDS identity", "DescribeVolumes", "ModifyInstanceAttribute", "CreateTags",
              "AttachVolume"]


def count_kinds(reqs: list[dict[str, Any]]) -> dict[str, int]:
        """Requests by kind, in the order boot makes them (others after, by name)."""
        out: dict[str, int] = {}
        for r in reqs:
                out[request_kind(r)] = out.get(request_kind(r), 0) + 1
        rank = {k: i for i, k in enumerate(KIND_ORDER)}
        return dict(sorted(out.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def max_rss_kib(time_output: str) -> int | None:
        m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", time_output)
        return int(m.group(1)) if m else None


def proc_cpu_ticks(pid: int) -> int:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])        # utime, stime (fields 14 and 15)


def proc_status_kib(pid: int, key: str) -> int | None:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                        return int(line.split()[1])
        return None


MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_NOATIME = 2, 4, 8, 1024
_libc = ctypes.CDLL(None, use_errno=True)


def single_mount_ms(images: list[Path], workdir: Path) -> float:
        """The slowest mount(2) of one of these xfs images on a loop device of its own, with the
        options lifeboat mounts a recovered volume with (nodev,nosuid,noexec,noatime,nouuid):
        the local work no implementation can avoid after the attach."""
        slowest = 0.0
        target = workdir / "mount-probe"
        target.mkdir(exist_ok=True)
        for image in images:
                loop = lbtest.run(["losetup", "--find", "--show", str(image)]).stdout.strip()
                try:
                        t0 = time.monotonic()
                        rc = _libc.mount(loop.encode(), str(target).encode(), b"xfs",
                                         ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME), b"nouuid")
                        took = (time.monotonic() - t0) * 1000
                        if rc != 0:
                                raise BenchError(f"mount {loop} ({image}): {os.strerror(ctypes.get_errno())}")
                        if _libc.umount2(str(target).encode(), 0) != 0:
                                raise BenchError(f"umount {target}: {os.strerror(ctypes.get_errno())}")
                        slowest = max(slowest, took)
                finally:
                        lbtest.run(["losetup", "-d", loop], check=False)
        return slowest


def med(values: list[float]) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None


def fmt_s(ms: float | None) -> str:
        return "-" if ms is None else f"{ms / 1000:.2f} s"


def fmt_mib(kib: float | None) -> str:
        return "-" if kib is None else f"{kib / 1024:.1f} MiB"


# --------------------------------------------------------------------------
# one fake AWS per K
# --------------------------------------------------------------------------

class Bench:
        def __init__(self, workdir: Path, binary: str, args: argparse.Namespace):
                self.workdir = workdir
                self.binary = binary
                self.args = args
                self.procs = lbtest.Processes(workdir)
                self.rpc: lbtest.FluentdRpc | None = None

        def start_fake(self, name: str) -> lbtest.FakeAWS:
                d = self.workdir / name
                hosts = d / "fakeaws" / "hosts"
                hosts.mkdir(parents=True)
                # The fake instances' sysfs and /dev trees in memory, as the kernel's sysfs is.
                # On a disk each file costs a millisecond or more to create, and the fake builds
                # an attached device's dozen entries under its lock: the attaches of a fleet would
                # complete one after another, tens of milliseconds apart. (Unmounted with the rest
                # of the work dir.)
                lbtest.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "lifeboat-bench", str(hosts)])
                fake = self.procs.start_fake(d, f"fakeaws-{name}")
                fake.config(**LATENCY)
                return fake

        def stop_fake(self, fake: lbtest.FakeAWS) -> None:
                problems = self.procs.stop_fake(fake)
                if problems:
                        raise BenchError("; ".join(problems))
                # The images are most of the disk a run takes (K = 32: 2 GiB of xfs, mkfs.xfs
                # writes a 64 MiB log): gone as soon as their numbers are taken, not at the end.
                for image in fake.workdir.rglob("*.img"):
                        image.unlink()

        def env(self, fake: lbtest.FakeAWS, inst: dict[str, Any], **extra: str) -> dict[str, str]:
                settings = {"LIFEBOAT_GROUP": GROUP, "LIFEBOAT_BUFFER_DEVICE": BUFFER_DEVICE, "LIFEBOAT_FLUENTD_RPC": "",
                            "LIFEBOAT_ATTACHMENT_SLOTS": str(SLOTS), "LIFEBOAT_BOOT_TIMEOUT": "120s"}
                return fake.env_for(inst, **{**settings, **extra})

        def new_instance(self, fake: lbtest.FakeAWS) -> dict[str, Any]:
                return fake.add_instance(buffer={"device": BUFFER_DEVICE, "size_gib": 1}, attachment_slots=SLOTS)

        def retire(self, fake: lbtest.FakeAWS, inst: dict[str, Any]) -> None:
                """Unmounts what boot mounted, terminates the instance (its recovered volumes go
                back to available, still dirty) and deletes its own buffer volume, which would
                otherwise be one more dirty candidate for the next run."""
                problems = lbtest.clean_dir(fake.workdir / "instances" / inst["instance_id"])
                if problems:
                        raise BenchError("; ".join(problems))
                fake.terminate(inst)
                a = fake.ec2("DeleteVolume", {"VolumeId": inst["buffer_volume_id"]})
                if a.status != 200:
                        raise BenchError(f"DeleteVolume of the own buffer: {a.status} {a.text}")

        # -- boot --

        def dirty_volumes(self, fake: lbtest.FakeAWS, k: int) -> list[str]:
                return [fake.add_orphan(fake.workdir / "images" / f"dirty-{i}.img", GROUP, DEAD_OWNER,
                                        availability_zone="us-east-1a")[0] for i in range(k)]

        def boot_once(self, fake: lbtest.FakeAWS, k: int) -> dict[str, Any]:
                inst = self.new_instance(fake)
                env = self.env(fake, inst, LIFEBOAT_MAX_RECOVER=str(max(k, 1)))
                fake.reset_requests()
                t0 = time.monotonic()
                r = subprocess.run([TIME, "-v", self.binary, "boot", "--json"], env=env, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=300)
                wall_ms = (time.monotonic() - t0) * 1000
                reqs = fake.requests()
                try:
                        report = json.loads(r.stdout)
                except json.JSONDecodeError:
                        raise BenchError(f"boot printed no JSON (exit {r.returncode}):\n{r.stdout}{r.stderr}") from None
                recovered = sum(1 for v in report["volumes"] if v["outcome"] == "recovered")
                if r.returncode != 0 or recovered != k or not report["own_volume"]["ready"]:
                        raise BenchError(f"boot with K={k} did not do the work (exit {r.returncode}, {recovered} "
                                         f"recovered):\n{r.stdout}{r.stderr[-2000:]}")
                attaches = [q["t"] for q in reqs if q["service"] == "ec2" and q["action"] == "AttachVolume"]
                describes = [q["t"] for q in reqs if q["service"] == "ec2" and q["action"] == "DescribeVolumes"]
                attach_phase_ms = after_attach_ms = None
                if attaches:
                        # first AttachVolume sent .. the answer of the last DescribeVolumes (which saw
                        # them all attached); after it: mounting, configs, owner tags, until boot exits.
                        # The fake's t is CLOCK_MONOTONIC, like time.monotonic() here.
                        seen_attached = max(describes) + LATENCY["ec2_latency_ms"] / 1000
                        attach_phase_ms = (seen_attached - min(attaches)) * 1000
                        after_attach_ms = (t0 + wall_ms / 1000 - seen_attached) * 1000
                self.retire(fake, inst)
                return {
                        "wall_ms": round(wall_ms, 1),
                        "boot_elapsed_ms": report["elapsed_ms"],
                        "exit_code": r.returncode,
                        "requests": len(reqs),
                        "imds_requests": sum(1 for q in reqs if q["service"] == "imds"),
                        "ec2_requests": sum(1 for q in reqs if q["service"] == "ec2"),
                        "by_kind": count_kinds(reqs),
                        "attach_phase_ms": None if attach_phase_ms is None else round(attach_phase_ms, 1),
                        "after_attach_ms": None if after_attach_ms is None else round(after_attach_ms, 1),
                        "max_rss_kib": max_rss_kib(r.stderr),
                }

        def bench_boot(self) -> dict[str, Any]:
                results = {}
                for k in self.args.ks:
                        fake = self.start_fake(f"boot-k{k}")
                        try:
                                t0 = time.monotonic()
                                self.dirty_volumes(fake, k)
                                setup_s = time.monotonic() - t0
                                images = sorted((fake.workdir / "images").glob("dirty-*.img"))
                                mount_ms = single_mount_ms(images, self.workdir) if k > 0 else 0.0
                                runs = []
                                for i in range(self.args.runs):
                                        run = self.boot_once(fake, k)
                                        runs.append(run)
                                        say(f"  boot K={k:<2} run {i + 1}/{self.args.runs}: {fmt_s(run['wall_ms'])}, "
                                            f"{run['requests']} requests, peak RSS {fmt_mib(run['max_rss_kib'])}")
                        finally:
                                self.stop_fake(fake)
                        lb = lower_bound_ms(k, LATENCY, mount_ms)
                        wall = med([r["wall_ms"] for r in runs])
                        kinds = list(dict.fromkeys(kind for r in runs for kind in r["by_kind"]))
                        results[str(k)] = {
                                "k": k,
                                "runs": runs,
                                "setup_s": round(setup_s, 1),
                                "median": {
                                        "wall_ms": wall,
                                        "requests": med([r["requests"] for r in runs]),
                                        "imds_requests": med([r["imds_requests"] for r in runs]),
                                        "ec2_requests": med([r["ec2_requests"] for r in runs]),
                                        "by_kind": {kind: med([r["by_kind"].get(kind, 0) for r in runs]) for kind in kinds},
                                        "attach_phase_ms": med([r["attach_phase_ms"] for r in runs]),
                                        "after_attach_ms": med([r["after_attach_ms"] for r in runs]),
                                        "max_rss_kib": med([r["max_rss_kib"] for r in runs]),
                                },
                                "lower_bound": lb,
                                "ratio": round(wall / lb["ms"], 2) if lb["ms"] else None,
                        }
                return results

        def rss_floor(self) -> int | None:
                """Peak RSS of a lifeboat that does nothing: what loading libcurl and the other
                shared libraries costs before any work."""
                r = subprocess.run([TIME, "-v", self.binary, "--help"], capture_output=True, text=True, timeout=30)
                return max_rss_kib(r.stderr)

        # -- fleet --

        def fleet_instances(self, fake: lbtest.FakeAWS, n: int, groups: list[str]) -> list[tuple[dict[str, Any],
                                                                                               dict[str, str]]]:
                """n recovery-only instances (no own buffer volume: what is measured is claiming),
                the i-th in groups[i]."""
                out = []
                for i in range(n):
                        inst = fake.add_instance(availability_zone="us-east-1a")
                        env = fake.env_for(inst, LIFEBOAT_GROUP=groups[i], LIFEBOAT_FLUENTD_RPC="",
                                           LIFEBOAT_BOOT_TIMEOUT="120s")
                        out.append((inst, env))
                return out

        def regroup(self, fake: lbtest.FakeAWS, vols: list[str], groups: list[str]) -> None:
                """Puts the i-th volume into groups[i] (a signed CreateTags, as a user would)."""
                by_group: dict[str, list[str]] = {}
                for vid, g in zip(vols, groups):
                        by_group.setdefault(g, []).append(vid)
                for g, ids in by_group.items():
                        params = {f"ResourceId.{i + 1}": vid for i, vid in enumerate(ids)}
                        params.update({"Tag.1.Key": "lifeboat:group", "Tag.1.Value": g})
                        a = fake.ec2("CreateTags", params)
                        if a.status != 200:
                                raise BenchError(f"CreateTags lifeboat:group={g}: {a.status} {a.text}")

        def fleet_once(self, fake: lbtest.FakeAWS, vols: list[str], control: bool) -> dict[str, Any]:
                """N instances boot at once; with control, each over 4 volumes of its own group."""
                n = len(vols) // FLEET_PER_INSTANCE
                groups = [f"own-{i}" for i in range(n)] if control else [FLEET_GROUP] * n
                self.regroup(fake, vols, [g for g in groups for _ in range(FLEET_PER_INSTANCE)])
                fleet = self.fleet_instances(fake, n, groups)
                fake.reset_requests()
                fake.reset_faults()
                fake.fault(action="DescribeVolumes", kind="barrier", count=n, timeout_ms=60000)
                fake.fault(action="AttachVolume", kind="barrier", count=len(vols), timeout_ms=60000)

                kind = "control" if control else "fleet"
                procs, outs, started, ended = [], [], [], {}
                for i, (inst, env) in enumerate(fleet):
                        name = f"{kind}-n{n}-{inst['instance_id']}"
                        out = open(self.procs.logs / f"{name}.json", "w+")
                        err = open(self.procs.logs / f"{name}.log", "ab")
                        started.append(time.monotonic())
                        p = subprocess.Popen([self.binary, "boot", "--json"], env=env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err)
                        err.close()
                        self.procs.record(p.pid, name)
                        self.procs.running[name] = p
                        procs.append((name, p))
                        outs.append(out)
                deadline = time.monotonic() + 300
                while len(ended) < n:
                        for i, (name, p) in enumerate(procs):
                                if i not in ended and p.poll() is not None:
                                        ended[i] = time.monotonic()
                                        self.procs.running.pop(name, None)
                        if time.monotonic() > deadline:
                                raise BenchError(f"{kind} of {n}: boots still running after 300 s")
                        time.sleep(0.002)

                walls, recovered = [], {}
                for i, (name, p) in enumerate(procs):
                        outs[i].seek(0)
                        text = outs[i].read()
                        outs[i].close()
                        try:
                                report = json.loads(text)
                        except json.JSONDecodeError:
                                raise BenchError(f"{name} printed no JSON (exit {p.returncode}):\n"
                                                 f"{text}{self.procs.log_tail(name)}") from None
                        mine = [v["volume_id"] for v in report["volumes"] if v["outcome"] == "recovered"]
                        if p.returncode != 0 or len(mine) != FLEET_PER_INSTANCE:
                                raise BenchError(f"{name} exited {p.returncode} with {len(mine)} recovered:\n"
                                                 f"{text}{self.procs.log_tail(name)}")
                        for vid in mine:
                                if vid in recovered:
                                        raise BenchError(f"{vid} recovered twice ({recovered[vid]} and {name})")
                                recovered[vid] = name
                        walls.append((ended[i] - started[i]) * 1000)
                reqs = fake.requests("ec2")
                if any(q.get("barrier") == "broken" for q in reqs):
                        raise BenchError(f"{kind} of {n}: a barrier timed out (the boots did not meet)")
                if sorted(recovered) != sorted(vols):
                        raise BenchError(f"{kind} of {n}: {len(vols) - len(recovered)} volumes not recovered")
                for inst, _ in fleet:
                        problems = lbtest.clean_dir(fake.workdir / "instances" / inst["instance_id"])
                        if problems:
                                raise BenchError("; ".join(problems))
                        fake.terminate(inst)
                return {
                        "slowest_ms": round(max(walls), 1),
                        "median_ms": round(statistics.median(walls), 1),
                        "walls_ms": sorted(round(w, 1) for w in walls),
                        "ec2_requests": len(reqs),
                        "by_kind": count_kinds(reqs),
                        "lost_attaches": sum(1 for q in reqs if q["action"] == "AttachVolume" and q["status"] == 400),
                }

        def bench_fleet(self) -> dict[str, Any]:
                results = {}
                for n in self.args.fleet:
                        fake = self.start_fake(f"fleet-n{n}")
                        fake.config(**FLEET_LATENCY)
                        try:
                                # Thin ext4 (under 1 MiB of disk each): 80 xfs images would take 5 GB.
                                vols = [fake.add_orphan(fake.workdir / "images" / f"fleet-{i}.img", FLEET_GROUP,
                                                        DEAD_OWNER, fs="ext4", thin=True,
                                                        availability_zone="us-east-1a")[0]
                                        for i in range(FLEET_PER_INSTANCE * n)]
                                runs: dict[str, list[dict[str, Any]]] = {"fleet": [], "control": []}
                                for i in range(self.args.fleet_runs):
                                        for kind in ("fleet", "control"):
                                                run = self.fleet_once(fake, vols, kind == "control")
                                                runs[kind].append(run)
                                                say(f"  {kind:<7} N={n:<2} run {i + 1}/{self.args.fleet_runs}: slowest "
                                                    f"{fmt_s(run['slowest_ms'])}, median {fmt_s(run['median_ms'])}, "
                                                    f"{run['ec2_requests']} EC2 calls, {run['lost_attaches']} lost attaches")
                        finally:
                                self.stop_fake(fake)
                        results[str(n)] = {"n": n, "volumes": FLEET_PER_INSTANCE * n, "runs": runs,
                                           "median": {kind: {key: med([r[key] for r in rs])
                                                             for key in ("slowest_ms", "median_ms", "ec2_requests",
                                                                         "lost_attaches")}
                                                      for kind, rs in runs.items()}}
                return results

        # -- watch --

        def watch_available(self) -> bool:
                r = subprocess.run([self.binary, "watch", "--help"], capture_output=True, text=True, timeout=10)
                return r.returncode == 0

        def booted_instance(self, fake: lbtest.FakeAWS) -> tuple[dict[str, Any], dict[str, str]]:
                inst = self.new_instance(fake)
                env = self.env(fake, inst)
                r = lbtest.run_lifeboat(env, "boot", binary=self.binary)
                if r.returncode != 0:
                        raise BenchError(f"boot failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
                return inst, env

        def bench_watch(self, rpc: lbtest.FluentdRpc) -> dict[str, Any]:
                fake = self.start_fake("watch")
                try:
                        latencies = []
                        for trial in range(self.args.watch_trials):
                                inst, env = self.booted_instance(fake)
                                name = f"watch-latency-{trial}"
                                p = self.procs.start(name, [self.binary, "watch"], dict(env, LIFEBOAT_FLUENTD_RPC=rpc.url))
                                # A random phase against the poll interval: the notice comes any time.
                                time.sleep(1.0 + random.uniform(0, 2.0))
                                if p.poll() is not None:
                                        raise BenchError(f"watch exited {p.returncode}:\n{self.procs.log_tail(name)}")
                                rpc.reset()
                                t0 = time.monotonic()
                                fake.events(inst, spot={"action": "terminate"})     # time: two minutes ahead
                                t_flush = rpc.wait_flush(15)
                                if t_flush is None:
                                        raise BenchError(f"no flush request within 15 s of the notice:\n"
                                                         f"{self.procs.log_tail(name)}")
                                latencies.append(round((t_flush - t0) * 1000, 1))
                                say(f"  watch notice -> flush request, trial {trial + 1}/{self.args.watch_trials}: "
                                    f"{latencies[-1] / 1000:.2f} s")
                                self.procs.stop(name)
                                self.retire(fake, inst)

                        inst, env = self.booted_instance(fake)
                        p = self.procs.start("watch-idle", [self.binary, "watch"], dict(env, LIFEBOAT_FLUENTD_RPC=rpc.url))
                        time.sleep(2)                   # start-up is not idle
                        if p.poll() is not None:
                                raise BenchError(f"watch exited {p.returncode}:\n{self.procs.log_tail('watch-idle')}")
                        say(f"  watch idle for {self.args.idle:.0f} s ...")
                        clk = os.sysconf("SC_CLK_TCK")
                        c0, t0 = proc_cpu_ticks(p.pid), time.monotonic()
                        time.sleep(self.args.idle)
                        c1, t1 = proc_cpu_ticks(p.pid), time.monotonic()
                        hwm = proc_status_kib(p.pid, "VmHWM")
                        rss_anon = proc_status_kib(p.pid, "RssAnon")
                        rss_file = proc_status_kib(p.pid, "RssFile")
                        idle_reqs = [q for q in fake.requests() if t0 <= q["t"] < t1]
                        self.procs.stop("watch-idle")
                        self.retire(fake, inst)
                finally:
                        self.stop_fake(fake)
                cpu_s = (c1 - c0) / clk
                return {
                        "poll_interval": "2s (default)",
                        "notice_to_flush_ms": {"trials": latencies, "median": med(latencies),
                                               "min": min(latencies), "max": max(latencies)},
                        "idle": {"seconds": round(t1 - t0, 1), "cpu_s": round(cpu_s, 3),
                                 "cpu_percent": round(100 * cpu_s / (t1 - t0), 3),
                                 "requests": len(idle_reqs), "by_kind": count_kinds(idle_reqs),
                                 "requests_per_minute": round(len(idle_reqs) * 60 / (t1 - t0), 1),
                                 "peak_rss_kib": hwm, "rss_anon_kib": rss_anon, "rss_file_kib": rss_file},
                }


        # -- the whole run --

        def run(self) -> int:
                args = self.args
                version = subprocess.run([self.binary, "version"], capture_output=True, text=True).stdout.strip()
                say(f"lifeboat bench: {version}; fake AWS on 127.0.0.1 with latency {LATENCY}")
                t_start = time.monotonic()
                results: dict[str, Any] = {
                        "date": lbtest.iso_in(0),
                        "lifeboat": version, "host": host_info(), "latency": LATENCY, "runs": args.runs,
                        "attachment_slots": SLOTS,
                }
                results["rss_floor_kib"] = self.rss_floor()
                results["boot"] = self.bench_boot() if args.ks else {}
                if args.fleet:
                        results["fleet_latency"] = FLEET_LATENCY
                        results["fleet_runs"] = args.fleet_runs
                        results["fleet"] = self.bench_fleet()
                if args.no_watch:
                        results["watch_skipped"] = "skipped (--no-watch)"
                elif not self.watch_available():
                        results["watch_skipped"] = "NOT MEASURED: this lifeboat has no watch command"
                else:
                        self.rpc = lbtest.FluentdRpc()
                        results["watch"] = self.bench_watch(self.rpc)
                results["targets"] = targets(results["boot"], results.get("watch"), results.get("fleet"))
                results["elapsed_s"] = round(time.monotonic() - t_start, 1)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=1) + "\n")
                md = args.out.with_suffix(".md")
                md.write_text("\n".join(table_lines(results, True)) + "\n")
                say()
                say("\n".join(table_lines(results, False)))
                say(f"\nwritten: {args.out} and {md} ({results['elapsed_s']:.0f} s)")
                return 0

        def close(self) -> list[str]:
                if self.rpc:
                        self.rpc.close()
                return self.procs.close()

# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def targets(boot: dict[str, Any], watch: dict[str, Any] | None,
            fleet: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out = []
        if "0" in boot:
                n = boot["0"]["median"]["requests"]
                out.append({"target": f"nothing to recover: <= {TARGET_IDLE_REQUESTS} requests",
                            "value": f"{n:g} requests", "met": n <= TARGET_IDLE_REQUESTS})
        for k in TARGET_RATIO_KS:
                if str(k) in boot:
                        b = boot[str(k)]
                        limit = TARGET_RATIO * b["lower_bound"]["ms"]
                        out.append({"target": f"K={k}: boot wall <= {TARGET_RATIO} x lower bound ({fmt_s(limit)})",
                                    "value": f"{fmt_s(b['median']['wall_ms'])} ({b['ratio']:.2f} x)",
                                    "met": b["median"]["wall_ms"] <= limit})
        rss = [b["median"]["max_rss_kib"] for b in boot.values() if b["median"]["max_rss_kib"] is not None]
        if rss:
                out.append({"target": "boot peak RSS <= 8 MiB", "value": f"{fmt_mib(max(rss))} (largest K)",
                            "met": max(rss) <= TARGET_RSS_KIB})
        if watch and watch["idle"]["peak_rss_kib"] is not None:
                v = watch["idle"]["peak_rss_kib"]
                out.append({"target": "watch peak RSS <= 8 MiB", "value": fmt_mib(v), "met": v <= TARGET_RSS_KIB})
        for f in (fleet or {}).values():
                n, m = f["n"], f["median"]
                if n in TARGET_FLEET_NS:
                        limit = TARGET_FLEET_RATIO * m["control"]["slowest_ms"]
                        out.append({"target": f"fleet N={n}: slowest boot <= {TARGET_FLEET_RATIO} x the control's "
                                              f"slowest ({fmt_s(limit)})",
                                    "value": f"{fmt_s(m['fleet']['slowest_ms'])} "
                                             f"({m['fleet']['slowest_ms'] / m['control']['slowest_ms']:.2f} x)",
                                    "met": m["fleet"]["slowest_ms"] <= limit})
                lost = max(r["lost_attaches"] for r in f["runs"]["fleet"])
                out.append({"target": f"fleet N={n}: lost attaches <= {TARGET_LOST_PER_INSTANCE} N "
                                      f"({TARGET_LOST_PER_INSTANCE * n})",
                            "value": f"{lost} in the worst run (median {m['fleet']['lost_attaches']:g})",
                            "met": lost <= TARGET_LOST_PER_INSTANCE * n})
        return out


def kinds_text(by_kind: dict[str, float]) -> str:
        short = {"IMDS token": "token", "IMDS identity": "identity", "DescribeVolumes": "Describe",
                 "ModifyInstanceAttribute": "Modify", "AttachVolume": "Attach", "CreateTags": "Tags"}
        return ", ".join(f"{short.get(k, k)} {v:g}" for k, v in by_kind.items() if v)


def table(head: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
        if markdown:
                return (["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
                        + ["| " + " | ".join(r) + " |" for r in rows])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        return (["  ".join(h.ljust(w) for h, w in zip(head, widths))]
                + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows])


def fleet_lines(results: dict[str, Any], markdown: bool) -> list[str]:
        lat = results["fleet_latency"]
        head = ["N", "volumes", "slowest boot", "median boot", "EC2 calls", "lost attaches",
                "control: slowest", "control: median", "control: EC2 calls", "slowest / control"]
        rows = []
        for f in results["fleet"].values():
                m, c = f["median"]["fleet"], f["median"]["control"]
                rows.append([str(f["n"]), str(f["volumes"]), fmt_s(m["slowest_ms"]), fmt_s(m["median_ms"]),
                             f"{m['ec2_requests']:g}", f"{m['lost_attaches']:g}", fmt_s(c["slowest_ms"]),
                             fmt_s(c["median_ms"]), f"{c['ec2_requests']:g}",
                             f"{m['slowest_ms'] / c['slowest_ms']:.2f}"])
        return [f"fleet: N instances boot at once over the same 4N dirty volumes (control: each over 4 of its own); "
                f"medians of {results['fleet_runs']} runs; latency injected: IMDS {lat['imds_latency_ms']} ms, "
                f"EC2 {lat['ec2_latency_ms']} ms per call, AttachVolume -> attached {lat['attach_delay_ms']} ms",
                ""] + table(head, rows, markdown) + [""]


def table_lines(results: dict[str, Any], markdown: bool) -> list[str]:
        boot, watch = results["boot"], results.get("watch")
        lat = results["latency"]
        head = ["K", "boot wall", "lower bound", "ratio", "attach phase", "after attach", "requests", "by kind",
                "peak RSS"]
        rows = []
        for b in boot.values():
                m = b["median"]
                rows.append([str(b["k"]), fmt_s(m["wall_ms"]), fmt_s(b["lower_bound"]["ms"]),
                             "-" if b["ratio"] is None else f"{b['ratio']:.2f}",
                             fmt_s(m["attach_phase_ms"]), fmt_s(m["after_attach_ms"]),
                             f"{m['requests']:g} ({m['imds_requests']:g} IMDS + {m['ec2_requests']:g} EC2)",
                             kinds_text(m["by_kind"]), fmt_mib(m["max_rss_kib"])])
        lines = []
        if rows:
                lines = [f"boot: medians of {results['runs']} runs; latency injected: IMDS {lat['imds_latency_ms']} ms, "
                         f"EC2 {lat['ec2_latency_ms']} ms per call, AttachVolume -> attached {lat['attach_delay_ms']} ms",
                         ""] + table(head, rows, markdown) + [""]
                mounts = [f"K={b['k']} {b['lower_bound']['slowest_mount_ms']:.0f} ms" for b in boot.values() if b["k"]]
                if mounts:
                        lines += [f"slowest single mount (in the lower bound): {', '.join(mounts)}", ""]
        if results.get("fleet"):
                lines += fleet_lines(results, markdown)
        if watch:
                n = watch["notice_to_flush_ms"]
                i = watch["idle"]
                lines.append(f"watch (LIFEBOAT_POLL_INTERVAL {watch['poll_interval']}): spot notice -> flush request "
                             f"median {fmt_s(n['median'])} (min {fmt_s(n['min'])}, max {fmt_s(n['max'])}, "
                             f"{len(n['trials'])} trials)")
                lines.append(f"watch idle {i['seconds']:.0f} s: CPU {i['cpu_s'] * 1000:.0f} ms ({i['cpu_percent']:.2f} %), "
                             f"{i['requests_per_minute']:g} requests/min ({kinds_text(i['by_kind'])}), "
                             f"peak RSS {fmt_mib(i['peak_rss_kib'])} (at the end: {fmt_mib(i['rss_anon_kib'])} "
                             f"anonymous, {fmt_mib(i['rss_file_kib'])} file-backed)")
        floor = results.get("rss_floor_kib")
        if floor:
                lines.append(f"RSS floor: `lifeboat --help` (the shared libraries loaded, no work) peaks at "
                             f"{fmt_mib(floor)}")
        else:
                lines.append(f"watch: {results.get('watch_skipped', 'not measured')}")
        lines.append("")
        lines.append("targets:")
        for t in results["targets"]:
                lines.append(f"{'- ' if markdown else '  '}{'met' if t['met'] else 'MISSED'}: {t['target']}: {t['value']}")
        return lines


def host_info() -> dict[str, Any]:
        cpu = ""
        try:
                for line in Path("/proc/cpuinfo").read_text().splitlines():
                        if line.startswith("model name"):
                                cpu = line.split(":", 1)[1].strip()
                                break
        except OSError:
                pass
        return {"kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version()}


def main(argv: list[str]) -> int:
        ap = lbtest.options(__doc__)
        ap.add_argument("--out", type=Path)
        ap.add_argument("--quick", action="store_true", help="20 s idle instead of 60 s, 3 watch trials")
        ap.add_argument("--runs", type=int, default=3)
        ap.add_argument("--ks", default="0,1,8,32")
        ap.add_argument("--idle", type=float)
        ap.add_argument("--watch-trials", type=int)
        ap.add_argument("--no-watch", action="store_true")
        ap.add_argument("--fleet", default="1,10,20", help="instance counts of the fleet case ('' for none)")
        ap.add_argument("--fleet-runs", type=int, default=3)
        ap.add_argument("--no-fleet", action="store_true")
        args = ap.parse_args(argv)
        rc = lbtest.preflight("bench", ap, args, ["workdir", "lifeboat", "out"])
        if rc is not None:
                return rc
        args.ks = [int(k) for k in args.ks.split(",") if k.strip()]
        if any(k < 0 or k > SLOTS - 2 for k in args.ks) or args.runs < 1:
                ap.error(f"K must be 0..{SLOTS - 2}, --runs >= 1")
        args.fleet = [] if args.no_fleet else [int(n) for n in args.fleet.split(",") if n.strip()]
        if any(n < 1 or n > 40 for n in args.fleet) or args.fleet_runs < 1:
                ap.error("fleet sizes must be 1..40, --fleet-runs >= 1")
        args.idle = args.idle if args.idle is not None else (20.0 if args.quick else 60.0)
        args.watch_trials = args.watch_trials or (3 if args.quick else 5)
        bench = Bench(args.workdir.resolve(), os.path.abspath(args.lifeboat), args)
        return lbtest.run_driver("bench", bench.run, bench.close)


if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
