#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The story scripts/demo tells: one spot interruption, end to end, on this machine.

Against the fake AWS (tests/fakeaws/) on 127.0.0.1, with the real lifeboat binary,
real loop devices and real xfs filesystems:

  1. instance A boots: its blank buffer volume is formatted, mounted, tagged dirty;
  2. a log writer standing in for fluentd puts numbered records into chunk files on it;
  3. a spot notice reaches A: watch asks fluentd to flush, but fluentd cannot ship in
     time and A dies: the volume stays dirty;
  4. instance B boots: boot claims A's volume, mounts it beside B's own buffer and
     writes the fluentd recovery config;
  5. the stand-in fluentd on B ships the old chunks; B's watch sees the volume drained,
     tags it flushed, unmounts and detaches it;
  6. reap deletes it.
Then it proves that every record written in step 2 was shipped exactly once.

Usage (scripts/demo runs it; root and loop devices needed):
  demo_driver.py --workdir DIR --lifeboat BIN     play the story in DIR (which must exist)
  demo_driver.py --cleanup DIR                   stop what is left of a story in DIR,
                                                 unmount and detach everything under it

Every process, mount and loop device lives under DIR; nothing touches /var/lib/lifeboat,
/etc/fluent or /run/lifeboat. Exit status: 0 the story ran and the proof holds, 1 it did
not (the reason is printed), 130/143 interrupted. Standard library only.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lbtest  # tests/, this script's directory, is on sys.path

GROUP = "demo"
BUFFER_DEVICE = "/dev/sdf"
STAGED_RECORDS = 600            # records in staged chunks (buffer.b*.log)
QUEUED_RECORDS = 400            # records in queued chunks (buffer.q*.log)
PER_CHUNK = 100
NOTICE_LEAD_S = 6               # the spot notice's "time" is this far ahead
STEPS = 6
WIDTH = 70                      # the step header is padded with dots to this column


class DemoError(lbtest.Failure):
        """The story went wrong: the message says where and why."""


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------

class Step:
        """One step: the header line, then (when done) its duration on the same line, then
        the details collected while it ran (the work dir shortened to $DEMO)."""

        workdir = ""

        def __init__(self, n: int, title: str):
                self.n = n
                self.title = title
                self.lines: list[str] = []
                self.t0 = 0.0

        def __enter__(self) -> "Step":
                head = f"[{self.n}/{STEPS}] {self.title} "
                print(head + "." * max(3, WIDTH - len(head)), end=" ", flush=True)
                self.t0 = time.monotonic()
                return self

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
                took = time.monotonic() - self.t0
                print(f"{took:5.1f} s" if exc_type is None else f"FAILED after {took:.1f} s", flush=True)
                for line in self.lines:
                        print("      " + (line.replace(self.workdir, "$DEMO") if self.workdir else line))
                sys.stdout.flush()
                return False

        def say(self, text: str = "") -> None:
                self.lines.extend(text.splitlines() or [""])

        def quote(self, text: str, prefix: str = "| ") -> None:
                for line in text.rstrip("\n").splitlines():
                        self.lines.append(prefix + line)


def since(t0: float) -> str:
        return f"{time.monotonic() - t0:.2f} s"


def mounted_at(path: Path) -> bool:
        return lbtest.mount_of(path) is not None


def start_fluentd(procs: lbtest.Processes, name: str, home: Path, out: Path, *extra: str) -> lbtest.FakeFluentd:
        """The stand-in fluentd of an instance: its live buffer, its recovery snippets."""
        return lbtest.FakeFluentd(home / "buffer" / "s3", home / "fluentd.d", out, procs.logs / f"{name}.events.log",
                                  procs.workdir / f"{name}.ready", *extra,
                                  spawn=lambda argv: procs.start(name, argv), output=procs.logs / f"{name}.log")


# --------------------------------------------------------------------------
# the story
# --------------------------------------------------------------------------

class Demo:
        def __init__(self, workdir: Path, binary: str):
                self.workdir = workdir
                self.procs = lbtest.Processes(workdir)
                self.binary = binary
                self.fake: lbtest.FakeAWS | None = None
                self.written: list[str] = []
                self.shipped_file = workdir / "s3-bucket-B.log"

        def env(self, inst: dict[str, Any], **extra: str) -> dict[str, str]:
                # boot runs before fluentd (as before the ECS agent): nothing to ask it.
                settings = {"LIFEBOAT_GROUP": GROUP, "LIFEBOAT_BUFFER_DEVICE": BUFFER_DEVICE,
                            "LIFEBOAT_FLUENTD_RPC": ""}
                return self.fake.env_for(inst, **{**settings, **extra})

        def lifeboat(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
                """Runs lifeboat to completion; its output goes to logs/lifeboat-runs.log too."""
                return lbtest.run_lifeboat(env, *args, binary=self.binary, log=self.procs.logs / "lifeboat-runs.log")

        def start_lifeboat(self, name: str, env: dict[str, str], *args: str) -> subprocess.Popen:
                return self.procs.start(name, [self.binary, *args], env)

        def home(self, inst: dict[str, Any]) -> Path:
                return self.workdir / "instances" / inst["instance_id"]

        def boot(self, step: Step, env: dict[str, str], expect_exit: int = 0) -> subprocess.CompletedProcess:
                t0 = time.monotonic()
                r = self.lifeboat(env, "boot")
                step.say(f"$ lifeboat boot   (exit {r.returncode}, {since(t0)})")
                step.quote(r.stdout)
                if r.returncode != expect_exit:
                        raise DemoError(f"lifeboat boot exited {r.returncode}:\n{r.stdout}{r.stderr}")
                return r

        def run(self) -> int:
                t_start = time.monotonic()
                print(f"lifeboat demo: one spot interruption, end to end, against a fake AWS on 127.0.0.1")
                self.fake = self.procs.start_fake(self.workdir)
                Step.workdir = str(self.workdir)
                print(f"  work dir $DEMO = {self.workdir}")
                print(f"  fake IMDS on 127.0.0.1:{self.fake.imds_port}, fake EC2 on 127.0.0.1:{self.fake.ec2_port}")
                print(f"  lifeboat {self.binary}")
                print()

                a, a_vol = self.step1_boot_a()
                self.step2_write(a)
                self.step3_notice_and_death(a, a_vol)
                b, b_env = self.step4_boot_b(a, a_vol)
                self.step5_ship_and_release(b, b_env, a_vol)
                self.step6_reap(b, b_env, a_vol)
                ok = self.prove()
                print(f"\ndemo {'done' if ok else 'FAILED'} in {time.monotonic() - t_start:.1f} s")
                return 0 if ok else 1

        # 1 -------------------------------------------------------------

        def step1_boot_a(self) -> tuple[dict[str, Any], str]:
                with Step(1, "A boots: blank buffer volume formatted, mounted, tagged dirty") as step:
                        a = self.fake.add_instance(buffer={"device": BUFFER_DEVICE, "size_gib": 1})
                        vol = a["buffer_volume_id"]
                        step.say(f"A = {a['instance_id']} (spot, {a['availability_zone']}), launched with a blank "
                                 f"1 GiB volume {vol} at {BUFFER_DEVICE}")
                        self.boot(step, self.env(a))
                        if self.fake.tag(vol, "lifeboat:state") != "dirty" or not mounted_at(self.home(a) / "buffer"):
                                raise DemoError(f"A's buffer volume is not mounted and dirty:\n"
                                                f"{self.fake.describe(vol)}")
                        step.say(self.fake.describe(vol))
                return a, vol

        # 2 -------------------------------------------------------------

        def step2_write(self, a: dict[str, Any]) -> None:
                with Step(2, "a log writer fills A's buffer with numbered records") as step:
                        live = self.home(a) / "buffer" / "s3"
                        for start, count, queued in ((1, STAGED_RECORDS, False),
                                                     (1 + STAGED_RECORDS, QUEUED_RECORDS, True)):
                                lbtest.write_chunks(live, count, start, PER_CHUNK, queued)
                        os.sync()
                        files = lbtest.chunk_files(live)
                        self.written = lbtest.record_lines(files)
                        staged = sum(1 for f in files if ".b" in f.name)
                        step.say(f"{len(self.written)} records in {len(files)} chunk files under {live}")
                        step.say(f"({staged} staged buffer.b*.log, {len(files) - staged} queued buffer.q*.log, "
                                 f"each with its .meta), e.g.")
                        first = sorted(self.written)
                        step.quote("\n".join(first[:2] + ["...", first[-1]]), "    ")
                        step.say(f"sha256 over the sorted records: {lbtest.digest(self.written)}")

        # 3 -------------------------------------------------------------

        def step3_notice_and_death(self, a: dict[str, Any], vol: str) -> None:
                with Step(3, "spot notice: watch asks for a flush, A dies undrained") as step:
                        home = self.home(a)
                        fluentd = start_fluentd(self.procs, "fluentd-A", home, self.workdir / "s3-bucket-A.log",
                                                "--stuck")
                        step.say(f"fluentd on A (stand-in, RPC :{fluentd.port}) cannot ship: its output is stuck")
                        env = self.env(a, LIFEBOAT_FLUENTD_RPC=fluentd.url, LIFEBOAT_POLL_INTERVAL="500ms",
                                       LIFEBOAT_FLUSH_TIMEOUT="3s", LIFEBOAT_FLUSH_MARGIN="1s")
                        self.start_lifeboat("watch-A", env, "watch")
                        time.sleep(0.5)
                        t_notice = time.monotonic()
                        when = lbtest.iso_in(NOTICE_LEAD_S)
                        self.fake.events(a, spot={"action": "terminate", "time": when})
                        step.say(f"spot notice: terminate at {when} (IMDS spot/instance-action)")
                        def flush_requested() -> bool:
                                self.procs.check_alive("watch-A")
                                return fluentd.status()["flush_requests"] > 0

                        lbtest.wait_for("watch on A to ask fluentd for a flush", flush_requested, timeout=15)
                        step.say(f"watch asked fluentd to flush {since(t_notice)} after the notice")
                        self.wait_watch_gives_up(step, a, vol, t_notice)
                        left = lbtest.chunk_files(home / "buffer")
                        step.say(f"A dies: {len(left)} chunk files ({len(lbtest.record_lines(left))} records) still "
                                 f"on the volume, fluentd shipped {fluentd.status()['shipped_records']}")
                        # The machine goes away: its processes and mounts with it.
                        fluentd.stop(signal.SIGKILL)
                        self.procs.stop("watch-A", signal.SIGKILL)
                        os.sync()
                        lbtest.run(["umount", str(home / "buffer")])
                        result = self.fake.terminate(a)
                        if vol not in result["detached"]:
                                raise DemoError(f"A's buffer volume did not survive the termination: {result}")
                        lbtest.wait_for(f"{vol} to be available",
                                        lambda: self.fake.volume(vol)["state"] == "available", 10)
                        if self.fake.tag(vol, "lifeboat:state") != "dirty":
                                raise DemoError(f"A's volume should still be dirty:\n{self.fake.describe(vol)}")
                        step.say("A terminated; its buffer volume survives (DeleteOnTermination was turned off):")
                        step.say(self.fake.describe(vol))

        def wait_watch_gives_up(self, step: Step, a: dict[str, Any], vol: str, t_notice: float) -> None:
                """Watch waits for the flush at most LIFEBOAT_FLUSH_TIMEOUT, and not past the notice
                time minus LIFEBOAT_FLUSH_MARGIN; fluentd is stuck, so watch must then call the volume
                undrained (in LIFEBOAT_RUN_DIR/watch.json) and leave it tagged dirty."""
                state_file = self.home(a) / "run" / "watch.json"

                def own_state() -> str | None:
                        self.procs.check_alive("watch-A")
                        if self.fake.tag(vol, "lifeboat:state") != "dirty":
                                raise DemoError(f"watch tagged A's volume although chunks remain:\n"
                                                f"{self.fake.describe(vol)}")
                        try:
                                return json.loads(state_file.read_text())["own"]["state"]
                        except (OSError, ValueError, KeyError, TypeError):
                                return None

                lbtest.wait_for("watch on A to give up on the flush", lambda: own_state() == "undrained",
                                timeout=NOTICE_LEAD_S + 10, interval=0.1)
                step.say(f"the flush did not finish by the deadline: watch calls the volume undrained and "
                         f"leaves it dirty ({since(t_notice)} after the notice)")
                out = self.procs.log_tail("watch-A", 8)
                if out:
                        step.quote(out)

        # 4 -------------------------------------------------------------

        def step4_boot_b(self, a: dict[str, Any], vol: str) -> tuple[dict[str, Any], dict[str, str]]:
                with Step(4, "B boots: claims A's volume, mounts it, writes fluentd config") as step:
                        b = self.fake.add_instance(buffer={"device": BUFFER_DEVICE, "size_gib": 1},
                                                   availability_zone=a["availability_zone"])
                        step.say(f"B = {b['instance_id']} in the same zone, with its own blank buffer volume "
                                 f"{b['buffer_volume_id']}")
                        env = self.env(b)
                        self.boot(step, env)
                        v = self.fake.volume(vol)
                        if not any(x["instance_id"] == b["instance_id"] and x["status"] == "attached"
                                   for x in v["attachments"]):
                                raise DemoError(f"B did not claim A's volume:\n{self.fake.describe(vol)}")
                        mount = self.home(b) / "recovery" / vol
                        if not mounted_at(mount):
                                raise DemoError(f"{mount} is not mounted")
                        snippet = self.home(b) / "fluentd.d" / f"{vol}.conf"
                        if not snippet.exists():
                                raise DemoError(f"no recovery config {snippet}")
                        step.say(f"recovered chunks: {len(lbtest.chunk_files(mount))} files under {mount}/s3")
                        step.say(f"fluentd recovery config {snippet} (comments left out):")
                        body = [ln for ln in snippet.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
                        step.quote("\n".join(body), "    ")
                        step.say(self.fake.describe(vol))
                return b, env

        # 5 -------------------------------------------------------------

        def step5_ship_and_release(self, b: dict[str, Any], env: dict[str, str], vol: str) -> None:
                with Step(5, "fluentd on B ships the old chunks; watch releases the volume") as step:
                        home = self.home(b)
                        mount = home / "recovery" / vol
                        t0 = time.monotonic()
                        fluentd = start_fluentd(self.procs, "fluentd-B", home, self.shipped_file)
                        step.say(f"fluentd on B (stand-in, RPC :{fluentd.port}) reads the recovery config at start "
                                 f"and ships to {self.shipped_file.name}")
                        watch_env = dict(env, LIFEBOAT_FLUENTD_RPC=fluentd.url, LIFEBOAT_SETTLE="2s",
                                         LIFEBOAT_POLL_INTERVAL="500ms")
                        self.start_lifeboat("watch-B", watch_env, "watch")
                        events: dict[str, float] = {}

                        def progress() -> bool:
                                self.procs.check_alive("watch-B")
                                now = time.monotonic() - t0
                                if "shipped" not in events and fluentd.status()["shipped_records"] >= len(self.written):
                                        events["shipped"] = now
                                v = self.fake.volume(vol)
                                if "flushed" not in events and v["tags"].get("lifeboat:state") == "flushed":
                                        events["flushed"] = now
                                if "unmounted" not in events and not mounted_at(mount):
                                        events["unmounted"] = now
                                if "detached" not in events and v["state"] == "available" and not v["attachments"]:
                                        events["detached"] = now
                                return len(events) == 4

                        try:
                                lbtest.wait_for(f"B's watch to release {vol}", progress, timeout=40, interval=0.05)
                        except lbtest.Failure as e:
                                raise DemoError(f"{e}; so far: {events}\nwatch on B:\n{self.procs.log_tail('watch-B')}"
                                                f"\n{self.fake.describe(vol)}") from None
                        st = fluentd.status()
                        step.say(f"{st['shipped_records']} records in {st['shipped_chunks']} chunks shipped after "
                                 f"{events['shipped']:.1f} s")
                        step.say(f"watch: no chunk left for LIFEBOAT_SETTLE (2 s): tagged flushed after "
                                 f"{events['flushed']:.1f} s, unmounted after {events['unmounted']:.1f} s, detached "
                                 f"after {events['detached']:.1f} s")
                        snippet = home / "fluentd.d" / f"{vol}.conf"
                        step.say(f"recovery config {snippet.name}: {'still there!' if snippet.exists() else 'removed'}")
                        if snippet.exists():
                                raise DemoError(f"{snippet} was not removed")
                        out = self.procs.log_tail("watch-B", 8)
                        if out:
                                step.quote(out)
                        step.say(self.fake.describe(vol))
                        # B lives on: its watch and fluentd run until the end of the demo.

        # 6 -------------------------------------------------------------

        def step6_reap(self, b: dict[str, Any], env: dict[str, str], vol: str) -> None:
                with Step(6, "reap deletes the flushed volume") as step:
                        t0 = time.monotonic()
                        r = self.lifeboat(env, "reap", "--min-age", "0s")
                        step.say(f"$ lifeboat reap --min-age 0s   (exit {r.returncode}, {since(t0)})")
                        step.quote(r.stdout)
                        if r.returncode != 0:
                                raise DemoError(f"lifeboat reap exited {r.returncode}:\n{r.stdout}{r.stderr}")
                        v = self.fake.volume(vol)
                        if v["state"] != "deleted":
                                raise DemoError(f"reap did not delete it:\n{self.fake.describe(vol)}")
                        step.say(f"{vol}: deleted")
                        own = self.fake.volume(b["buffer_volume_id"])
                        step.say(f"B's own buffer volume {own['volume_id']}: {own['state']}, "
                                 f"{own['tags'].get('lifeboat:state')}: B's live buffer, left alone")

        # proof ---------------------------------------------------------

        def prove(self) -> bool:
                """The "S3" is what both stand-in fluentds shipped (A's stuck one: nothing)."""
                shipped = lbtest.record_lines([out for out in (self.workdir / "s3-bucket-A.log", self.shipped_file)
                                               if out.exists()])
                written = collections.Counter(self.written)
                got = collections.Counter(shipped)
                missing = sorted(written - got)
                extra = sorted(got - written)
                dups = sorted(ln for ln, n in got.items() if n > 1)
                h_written, h_shipped = lbtest.digest(self.written), lbtest.digest(shipped)
                print()
                if not missing and not extra and not dups and h_written == h_shipped and self.written:
                        print(f"{len(self.written)} records written, {len(shipped)} shipped exactly once, "
                              f"sha256 {h_shipped} matches")
                        return True
                print(f"PROOF FAILED: {len(self.written)} records written, {len(shipped)} shipped; "
                      f"{len(missing)} missing, {len(dups)} duplicated, {len(extra)} unexpected")
                print(f"  sha256 written {h_written}\n  sha256 shipped {h_shipped}")
                for what, lines in (("missing", missing), ("duplicated", dups), ("unexpected", extra)):
                        for ln in lines[:5]:
                                print(f"  {what}: {ln}")
                return False


def main(argv: list[str]) -> int:
        ap = lbtest.options(__doc__)
        args = ap.parse_args(argv)
        rc = lbtest.preflight("demo", ap, args, ["workdir", "lifeboat"])
        if rc is not None:
                return rc
        demo = Demo(args.workdir.resolve(), os.path.abspath(args.lifeboat))
        return lbtest.run_driver("demo", demo.run, demo.procs.close, logs=args.workdir / "logs")


if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
