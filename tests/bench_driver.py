#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The benchmark scripts/bench runs: lifeboat boot and watch against the fake AWS with
injected latency, on real loop devices and filesystems.

boot, for K = 0, 1, 8, 32 dirty volumes to recover (each K several runs, medians):
  wall time of `lifeboat boot`, HTTP requests by kind (from the fake's request log),
  peak RSS (/usr/bin/time -v), the attach phase, and the lower bound for the same work
  (see lower_bound_ms). Every run boots a new instance with a blank own buffer volume,
  like a fresh launch; the K volumes are put back (dirty, detached) between runs.
watch: notice -> flush request latency (default LIFEBOAT_POLL_INTERVAL, the notice at a
  random phase of the poll), and CPU used while idle (utime + stime from /proc/PID/stat).

Usage (scripts/bench runs it as root):
  bench_driver.py --workdir DIR --lifeboat BIN --out results.json [--quick] [--runs N]
                  [--ks 0,1,8,32] [--idle SECONDS] [--watch-trials N] [--no-watch]
  bench_driver.py --cleanup DIR

Prints a table, writes JSON (and the same table as Markdown beside it, .md). Timings are
not tests: nothing fails because a target is missed; the table says which are.
Standard library only.
"""

from __future__ import annotations

import argparse
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
TARGET_RATIO = 1.5              # boot wall <= 1.5 x the lower bound, at K = 8 and 32
TARGET_RATIO_KS = (8, 32)
TARGET_RSS_KIB = 8 * 1024       # peak RSS <= 8 MiB


class BenchError(lbtest.Failure):
        pass


def say(text: str = "") -> None:
        print(text, flush=True)


# --------------------------------------------------------------------------
# the lower bound
# --------------------------------------------------------------------------

def lower_bound_ms(k: int, lat: dict[str, int]) -> dict[str, Any]:
        """The least time the same work can take against these latencies, whatever the
        implementation: the round trips that depend on each other, plus one attach latency.

        IMDS: token, then the identity document (2 round trips).
        EC2: DescribeVolumes of this instance (to find its own buffer volume), then
        ModifyInstanceAttribute (DeleteOnTermination off) and CreateTags (dirty) for the fresh
        own volume, DescribeVolumes of the dirty candidates; with K > 0: one round of AttachVolume
        (all K at once), one attach latency, one DescribeVolumes that sees them attached, and one
        CreateTags round for the new owner (one call can tag all K). Local work (mkfs, probes,
        mounts) counts as zero."""
        imds = 2
        ec2 = 4 + (3 if k > 0 else 0)
        attach = lat["attach_delay_ms"] if k > 0 else 0
        return {"imds_round_trips": imds, "ec2_round_trips": ec2, "attach_latency_ms": attach,
                "ms": imds * lat["imds_latency_ms"] + ec2 * lat["ec2_latency_ms"] + attach}


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
                d.mkdir()
                fake = self.procs.start_fake(d, f"fakeaws-{name}")
                fake.config(**LATENCY)
                return fake

        def stop_fake(self, fake: lbtest.FakeAWS) -> None:
                problems = self.procs.stop_fake(fake)
                if problems:
                        raise BenchError("; ".join(problems))

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
                                runs = []
                                for i in range(self.args.runs):
                                        run = self.boot_once(fake, k)
                                        runs.append(run)
                                        say(f"  boot K={k:<2} run {i + 1}/{self.args.runs}: {fmt_s(run['wall_ms'])}, "
                                            f"{run['requests']} requests, peak RSS {fmt_mib(run['max_rss_kib'])}")
                        finally:
                                self.stop_fake(fake)
                        lb = lower_bound_ms(k, LATENCY)
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
                results["boot"] = self.bench_boot()
                if args.no_watch:
                        results["watch_skipped"] = "skipped (--no-watch)"
                elif not self.watch_available():
                        results["watch_skipped"] = "NOT MEASURED: this lifeboat has no watch command"
                else:
                        self.rpc = lbtest.FluentdRpc()
                        results["watch"] = self.bench_watch(self.rpc)
                results["targets"] = targets(results["boot"], results.get("watch"))
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

def targets(boot: dict[str, Any], watch: dict[str, Any] | None) -> list[dict[str, Any]]:
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
        return out


def kinds_text(by_kind: dict[str, float]) -> str:
        short = {"IMDS token": "token", "IMDS identity": "identity", "DescribeVolumes": "Describe",
                 "ModifyInstanceAttribute": "Modify", "AttachVolume": "Attach", "CreateTags": "Tags"}
        return ", ".join(f"{short.get(k, k)} {v:g}" for k, v in by_kind.items() if v)


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
        lines = [f"boot: medians of {results['runs']} runs; latency injected: IMDS {lat['imds_latency_ms']} ms, "
                 f"EC2 {lat['ec2_latency_ms']} ms per call, AttachVolume -> attached {lat['attach_delay_ms']} ms", ""]
        if markdown:
                lines.append("| " + " | ".join(head) + " |")
                lines.append("|" + "|".join(" --- " for _ in head) + "|")
                lines += ["| " + " | ".join(r) + " |" for r in rows]
        else:
                widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
                lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
                lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        lines.append("")
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
        args = ap.parse_args(argv)
        rc = lbtest.preflight("bench", ap, args, ["workdir", "lifeboat", "out"])
        if rc is not None:
                return rc
        args.ks = [int(k) for k in args.ks.split(",") if k.strip()]
        if any(k < 0 or k > SLOTS - 2 for k in args.ks) or args.runs < 1:
                ap.error(f"K must be 0..{SLOTS - 2}, --runs >= 1")
        args.idle = args.idle if args.idle is not None else (20.0 if args.quick else 60.0)
        args.watch_trials = args.watch_trials or (3 if args.quick else 5)
        bench = Bench(args.workdir.resolve(), os.path.abspath(args.lifeboat), args)
        return lbtest.run_driver("bench", bench.run, bench.close)


if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
