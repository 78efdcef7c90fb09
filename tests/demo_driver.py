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

import argparse
import collections
import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR / "integration"))
import lbtest  # noqa: E402

PYTHON = "/usr/bin/python3"
FAKEFLUENTD = TESTS_DIR / "fakefluentd.py"
GROUP = "demo"
BUFFER_DEVICE = "/dev/sdf"
STAGED_RECORDS = 600            # records in staged chunks (buffer.b*.log)
QUEUED_RECORDS = 400            # records in queued chunks (buffer.q*.log)
PER_CHUNK = 100
NOTICE_LEAD_S = 6               # the spot notice's "time" is this far ahead
STEPS = 6
WIDTH = 70                      # the step header is padded with dots to this column


class DemoError(Exception):
        """The story went wrong: the message says where and why."""


class Interrupted(Exception):
        def __init__(self, signum: int):
                super().__init__(signal.Signals(signum).name)
                self.signum = signum


def _on_signal(signum: int, frame: Any) -> None:
        # Once: the cleanup that follows must not be cut short by the next signal.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signum)


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


# --------------------------------------------------------------------------
# processes: every one is recorded in WORKDIR/pids so --cleanup finds it
# --------------------------------------------------------------------------

class Processes:
        def __init__(self, workdir: Path):
                self.workdir = workdir
                self.pids_file = workdir / "pids"
                self.running: dict[str, subprocess.Popen] = {}

        def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
                log = open(self.workdir / "logs" / f"{name}.log", "ab")
                p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                log.close()
                with open(self.pids_file, "a") as f:
                        f.write(f"{p.pid} {name}\n")
                self.running[name] = p
                return p

        def check_alive(self, name: str) -> None:
                """Fails the story when a process that should run has exited."""
                p = self.running.get(name)
                if p is not None and p.poll() is not None:
                        raise DemoError(f"{name} exited with {p.returncode}:\n{log_tail(self.workdir, name)}")

        def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = 10) -> int | None:
                p = self.running.pop(name, None)
                if p is None:
                        return None
                if p.poll() is None:
                        p.send_signal(sig)
                        try:
                                p.wait(grace)
                        except subprocess.TimeoutExpired:
                                p.kill()
                                p.wait()
                return p.returncode

        def stop_all(self) -> None:
                # Last started, first stopped: watch before the fluentd it talks to.
                for name in reversed(list(self.running)):
                        self.stop(name, grace=5)


def log_tail(workdir: Path, name: str, lines: int = 15) -> str:
        p = workdir / "logs" / f"{name}.log"
        if not p.exists():
                return ""
        return "\n".join(p.read_text(errors="replace").splitlines()[-lines:])


# --------------------------------------------------------------------------
# the stand-in fluentd
# --------------------------------------------------------------------------

class Fluentd:
        """tests/fakefluentd.py for one instance: RPC endpoint, live buffer, recovery snippets."""

        def __init__(self, procs: Processes, name: str, buffer_dir: Path, conf_dir: Path, out: Path,
                     stuck: bool = False):
                self.procs = procs
                self.name = name
                self.out = out
                ready = procs.workdir / f"{name}.ready"
                argv = [PYTHON, str(FAKEFLUENTD), "--port", "0", "--ready-file", str(ready),
                        "--buffer-dir", str(buffer_dir), "--conf-dir", str(conf_dir), "--out", str(out),
                        "--log", str(procs.workdir / "logs" / f"{name}.events.log")]
                if stuck:
                        argv.append("--stuck")
                p = procs.start(name, argv)
                deadline = time.monotonic() + 15
                while not ready.exists():
                        if p.poll() is not None or time.monotonic() > deadline:
                                raise DemoError(f"{name} did not start:\n{log_tail(procs.workdir, name)}")
                        time.sleep(0.02)
                self.port = int(ready.read_text())
                self.url = f"http://127.0.0.1:{self.port}"

        def status(self) -> dict[str, Any]:
                a = lbtest.http("GET", self.url + "/_fake/status", timeout=5)
                if a.status != 200:
                        raise DemoError(f"{self.name}: /_fake/status answered {a.status}")
                return json.loads(a.body)

        def stop(self, sig: int = signal.SIGTERM) -> None:
                self.procs.stop(self.name, sig)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def wait_until(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while True:
                value = predicate()
                if value:
                        return value
                if time.monotonic() > deadline:
                        raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
                time.sleep(interval)


def describe_volume(fake: lbtest.FakeAWS, vid: str) -> str:
        v = fake.volume(vid)
        if v is None:
                return f"{vid}: unknown to EC2"
        tags = " ".join(f"{k}={val}" for k, val in sorted(v["tags"].items()))
        where = ", ".join(f"attached to {a['instance_id']} at {a['device']} ({a['status']})"
                          for a in v["attachments"]) or "attached nowhere"
        return f"{vid}: EC2 state {v['state']}, {where}\n    tags: {tags or '(none)'}"


def lb_state(fake: lbtest.FakeAWS, vid: str) -> str | None:
        v = fake.volume(vid)
        return v and v["tags"].get("lifeboat:state")


def chunk_files(d: Path) -> list[Path]:
        rx = re.compile(r"\.(b|q)[0-9a-f]+\.(log|buf)$")
        found = []
        for root, _, names in os.walk(d):
                found += [Path(root) / n for n in names if rx.search(n)]
        return sorted(found)


def record_lines(files: list[Path]) -> list[str]:
        lines = []
        for f in files:
                lines += [ln for ln in f.read_text().split("\n") if ln]
        return lines


def digest(lines: list[str]) -> str:
        return hashlib.sha256("".join(ln + "\n" for ln in sorted(lines)).encode()).hexdigest()


def mounted_at(path: Path) -> bool:
        return any(m["target"] == str(path) for m in lbtest.mounts())


def iso_in(seconds: float) -> str:
        t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Lifeboat:
        def __init__(self, binary: str, procs: Processes):
                self.binary = binary
                self.procs = procs

        def run(self, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
                r = subprocess.run([self.binary, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=timeout)
                with open(self.procs.workdir / "logs" / "lifeboat-runs.log", "a") as f:
                        f.write(f"$ lifeboat {' '.join(args)}  -> exit {r.returncode}\n{r.stdout}{r.stderr}\n")
                return r

        def start(self, name: str, env: dict[str, str], *args: str) -> subprocess.Popen:
                return self.procs.start(name, [self.binary, *args], env)


# --------------------------------------------------------------------------
# the story
# --------------------------------------------------------------------------

class Demo:
        def __init__(self, workdir: Path, binary: str):
                self.workdir = workdir
                self.procs = Processes(workdir)
                self.lifeboat = Lifeboat(binary, self.procs)
                self.fake: lbtest.FakeAWS | None = None
                self.written: list[str] = []
                self.shipped_file = workdir / "s3-bucket-B.log"

        def env(self, inst: dict[str, Any], **extra: str) -> dict[str, str]:
                env = self.fake.env_for(inst)
                env.update({
                        "LIFEBOAT_GROUP": GROUP,
                        "LIFEBOAT_BUFFER_DEVICE": BUFFER_DEVICE,
                        # boot runs before fluentd (as before the ECS agent): nothing to ask it.
                        "LIFEBOAT_FLUENTD_RPC": "",
                })
                env.update(extra)
                return env

        def home(self, inst: dict[str, Any]) -> Path:
                return self.workdir / "instances" / inst["instance_id"]

        def boot(self, step: Step, env: dict[str, str], expect_exit: int = 0) -> subprocess.CompletedProcess:
                t0 = time.monotonic()
                r = self.lifeboat.run(env, "boot")
                step.say(f"$ lifeboat boot   (exit {r.returncode}, {since(t0)})")
                step.quote(r.stdout)
                if r.returncode != expect_exit:
                        raise DemoError(f"lifeboat boot exited {r.returncode}:\n{r.stdout}{r.stderr}")
                return r

        def run(self) -> int:
                t_start = time.monotonic()
                (self.workdir / "logs").mkdir(exist_ok=True)
                print(f"lifeboat demo: one spot interruption, end to end, against a fake AWS on 127.0.0.1")
                self.fake = lbtest.FakeAWS.start(self.workdir)
                with open(self.procs.pids_file, "a") as f:
                        f.write(f"{self.fake.pid} fakeaws\n")
                Step.workdir = str(self.workdir)
                print(f"  work dir $DEMO = {self.workdir}")
                print(f"  fake IMDS on 127.0.0.1:{self.fake.imds_port}, fake EC2 on 127.0.0.1:{self.fake.ec2_port}")
                print(f"  lifeboat {self.lifeboat.binary}")
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
                        if lb_state(self.fake, vol) != "dirty" or not mounted_at(self.home(a) / "buffer"):
                                raise DemoError(f"A's buffer volume is not mounted and dirty:\n"
                                                f"{describe_volume(self.fake, vol)}")
                        step.say(describe_volume(self.fake, vol))
                return a, vol

        # 2 -------------------------------------------------------------

        def step2_write(self, a: dict[str, Any]) -> None:
                with Step(2, "a log writer fills A's buffer with numbered records") as step:
                        live = self.home(a) / "buffer" / "s3"
                        for start, count, queued in ((1, STAGED_RECORDS, False),
                                                     (1 + STAGED_RECORDS, QUEUED_RECORDS, True)):
                                argv = [PYTHON, str(FAKEFLUENTD), "write", "--dir", str(live), "--records", str(count),
                                        "--start", str(start), "--per-chunk", str(PER_CHUNK)]
                                r = subprocess.run(argv + (["--queued"] if queued else []), capture_output=True,
                                                   text=True, timeout=60)
                                if r.returncode != 0:
                                        raise DemoError(f"the writer failed: {r.stderr}")
                        os.sync()
                        files = chunk_files(live)
                        self.written = record_lines(files)
                        staged = sum(1 for f in files if ".b" in f.name)
                        step.say(f"{len(self.written)} records in {len(files)} chunk files under {live}")
                        step.say(f"({staged} staged buffer.b*.log, {len(files) - staged} queued buffer.q*.log, "
                                 f"each with its .meta), e.g.")
                        first = sorted(self.written)
                        step.quote("\n".join(first[:2] + ["...", first[-1]]), "    ")
                        step.say(f"sha256 over the sorted records: {digest(self.written)}")

        # 3 -------------------------------------------------------------

        def step3_notice_and_death(self, a: dict[str, Any], vol: str) -> None:
                with Step(3, "spot notice: watch asks for a flush, A dies undrained") as step:
                        home = self.home(a)
                        fluentd = Fluentd(self.procs, "fluentd-A", home / "buffer" / "s3", home / "fluentd.d",
                                          self.workdir / "s3-bucket-A.log", stuck=True)
                        step.say(f"fluentd on A (stand-in, RPC :{fluentd.port}) cannot ship: its output is stuck")
                        env = self.env(a, LIFEBOAT_FLUENTD_RPC=fluentd.url, LIFEBOAT_POLL_INTERVAL="500ms",
                                       LIFEBOAT_FLUSH_TIMEOUT="3s", LIFEBOAT_FLUSH_MARGIN="1s")
                        self.lifeboat.start("watch-A", env, "watch")
                        time.sleep(0.5)
                        t_notice = time.monotonic()
                        when = iso_in(NOTICE_LEAD_S)
                        self.fake.events(a, spot={"action": "terminate", "time": when})
                        step.say(f"spot notice: terminate at {when} (IMDS spot/instance-action)")
                        def flush_requested() -> bool:
                                self.procs.check_alive("watch-A")
                                return fluentd.status()["flush_requests"] > 0

                        wait_until("watch on A to ask fluentd for a flush", flush_requested, timeout=15)
                        step.say(f"watch asked fluentd to flush {since(t_notice)} after the notice")
                        self.wait_watch_gives_up(step, a, vol, t_notice)
                        left = chunk_files(home / "buffer")
                        step.say(f"A dies: {len(left)} chunk files ({len(record_lines(left))} records) still "
                                 f"on the volume, fluentd shipped {fluentd.status()['shipped_records']}")
                        # The machine goes away: its processes and mounts with it.
                        fluentd.stop(signal.SIGKILL)
                        self.procs.stop("watch-A", signal.SIGKILL)
                        os.sync()
                        lbtest.run(["umount", str(home / "buffer")])
                        result = self.fake.terminate(a)
                        if vol not in result["detached"]:
                                raise DemoError(f"A's buffer volume did not survive the termination: {result}")
                        wait_until(f"{vol} to be available", lambda: self.fake.volume(vol)["state"] == "available", 10)
                        if lb_state(self.fake, vol) != "dirty":
                                raise DemoError(f"A's volume should still be dirty:\n{describe_volume(self.fake, vol)}")
                        step.say("A terminated; its buffer volume survives (DeleteOnTermination was turned off):")
                        step.say(describe_volume(self.fake, vol))

        def wait_watch_gives_up(self, step: Step, a: dict[str, Any], vol: str, t_notice: float) -> None:
                """Watch waits for the flush at most LIFEBOAT_FLUSH_TIMEOUT, and not past the notice
                time minus LIFEBOAT_FLUSH_MARGIN; fluentd is stuck, so watch must then call the volume
                undrained (in LIFEBOAT_RUN_DIR/watch.json) and leave it tagged dirty."""
                state_file = self.home(a) / "run" / "watch.json"

                def own_state() -> str | None:
                        self.procs.check_alive("watch-A")
                        if lb_state(self.fake, vol) != "dirty":
                                raise DemoError(f"watch tagged A's volume although chunks remain:\n"
                                                f"{describe_volume(self.fake, vol)}")
                        try:
                                return json.loads(state_file.read_text())["own"]["state"]
                        except (OSError, ValueError, KeyError, TypeError):
                                return None

                wait_until("watch on A to give up on the flush", lambda: own_state() == "undrained",
                           timeout=NOTICE_LEAD_S + 10, interval=0.1)
                step.say(f"the flush did not finish by the deadline: watch calls the volume undrained and "
                         f"leaves it dirty ({since(t_notice)} after the notice)")
                out = log_tail(self.workdir, "watch-A", 8)
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
                                raise DemoError(f"B did not claim A's volume:\n{describe_volume(self.fake, vol)}")
                        mount = self.home(b) / "recovery" / vol
                        if not mounted_at(mount):
                                raise DemoError(f"{mount} is not mounted")
                        snippet = self.home(b) / "fluentd.d" / f"{vol}.conf"
                        if not snippet.exists():
                                raise DemoError(f"no recovery config {snippet}")
                        step.say(f"recovered chunks: {len(chunk_files(mount))} files under {mount}/s3")
                        step.say(f"fluentd recovery config {snippet} (comments left out):")
                        body = [ln for ln in snippet.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
                        step.quote("\n".join(body), "    ")
                        step.say(describe_volume(self.fake, vol))
                return b, env

        # 5 -------------------------------------------------------------

        def step5_ship_and_release(self, b: dict[str, Any], env: dict[str, str], vol: str) -> None:
                with Step(5, "fluentd on B ships the old chunks; watch releases the volume") as step:
                        home = self.home(b)
                        mount = home / "recovery" / vol
                        t0 = time.monotonic()
                        fluentd = Fluentd(self.procs, "fluentd-B", home / "buffer" / "s3", home / "fluentd.d",
                                          self.shipped_file)
                        step.say(f"fluentd on B (stand-in, RPC :{fluentd.port}) reads the recovery config at start "
                                 f"and ships to {self.shipped_file.name}")
                        watch_env = dict(env, LIFEBOAT_FLUENTD_RPC=fluentd.url, LIFEBOAT_SETTLE="2s",
                                         LIFEBOAT_POLL_INTERVAL="500ms")
                        self.lifeboat.start("watch-B", watch_env, "watch")
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
                                wait_until(f"B's watch to release {vol}", progress, timeout=40, interval=0.05)
                        except DemoError as e:
                                raise DemoError(f"{e}; so far: {events}\nwatch on B:\n{log_tail(self.workdir, 'watch-B')}"
                                                f"\n{describe_volume(self.fake, vol)}") from None
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
                        out = log_tail(self.workdir, "watch-B", 8)
                        if out:
                                step.quote(out)
                        step.say(describe_volume(self.fake, vol))
                        # B lives on: its watch and fluentd run until the end of the demo.

        # 6 -------------------------------------------------------------

        def step6_reap(self, b: dict[str, Any], env: dict[str, str], vol: str) -> None:
                with Step(6, "reap deletes the flushed volume") as step:
                        t0 = time.monotonic()
                        r = self.lifeboat.run(env, "reap", "--min-age", "0s")
                        step.say(f"$ lifeboat reap --min-age 0s   (exit {r.returncode}, {since(t0)})")
                        step.quote(r.stdout)
                        if r.returncode != 0:
                                raise DemoError(f"lifeboat reap exited {r.returncode}:\n{r.stdout}{r.stderr}")
                        v = self.fake.volume(vol)
                        if v["state"] != "deleted":
                                raise DemoError(f"reap did not delete it:\n{describe_volume(self.fake, vol)}")
                        step.say(f"{vol}: deleted")
                        own = self.fake.volume(b["buffer_volume_id"])
                        step.say(f"B's own buffer volume {own['volume_id']}: {own['state']}, "
                                 f"{own['tags'].get('lifeboat:state')}: B's live buffer, left alone")

        # proof ---------------------------------------------------------

        def prove(self) -> bool:
                """The "S3" is what both stand-in fluentds shipped (A's stuck one: nothing)."""
                shipped = []
                for out in (self.workdir / "s3-bucket-A.log", self.shipped_file):
                        if out.exists():
                                shipped += [ln for ln in out.read_text().split("\n") if ln]
                written = collections.Counter(self.written)
                got = collections.Counter(shipped)
                missing = sorted(written - got)
                extra = sorted(got - written)
                dups = sorted(ln for ln, n in got.items() if n > 1)
                h_written, h_shipped = digest(self.written), digest(shipped)
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

        # cleanup -------------------------------------------------------

        def close(self) -> list[str]:
                problems = []
                self.procs.stop_all()
                if self.fake is not None:
                        problems += self.fake.stop()
                left = lbtest.cleanup_under(self.workdir)
                if left["mounts"] or left["loops"]:
                        problems.append("could not clean up " + lbtest.describe_leftovers(left))
                return problems


# --------------------------------------------------------------------------
# --cleanup: the safety net scripts/demo runs on exit, whatever happened
# --------------------------------------------------------------------------

def _proc_mentions(pid: int, needle: bytes) -> bool:
        for what in ("cmdline", "environ"):
                try:
                        if needle in Path(f"/proc/{pid}/{what}").read_bytes():
                                return True
                except OSError:
                        pass
        return False


def cleanup(workdir: Path) -> int:
        """Stops the demo's processes still running (each recorded pid, if it still refers to
        this work dir), then unmounts and detaches everything under the work dir."""
        workdir = workdir.resolve()
        needle = str(workdir).encode()
        pids = []
        pids_file = workdir / "pids"
        if pids_file.exists():
                for line in pids_file.read_text().splitlines():
                        if line.split() and line.split()[0].isdigit():
                                pids.append(int(line.split()[0]))
        alive = [p for p in pids if p != os.getpid() and _proc_mentions(p, needle)]
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
                for p in alive:
                        try:
                                os.kill(p, sig)
                        except ProcessLookupError:
                                pass
                deadline = time.monotonic() + wait
                while alive and time.monotonic() < deadline:
                        alive = [p for p in alive if Path(f"/proc/{p}").exists() and _proc_mentions(p, needle)]
                        time.sleep(0.05)
        left = lbtest.cleanup_under(workdir)
        if left["mounts"] or left["loops"] or alive:
                print(f"demo cleanup: could not clean up {lbtest.describe_leftovers(left)}"
                      f"{' processes ' + str(alive) if alive else ''}", file=sys.stderr)
                return 1
        return 0


def main(argv: list[str]) -> int:
        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--workdir", type=Path)
        ap.add_argument("--lifeboat", help="the lifeboat binary")
        ap.add_argument("--cleanup", type=Path, metavar="DIR")
        args = ap.parse_args(argv)
        if args.cleanup:
                return cleanup(args.cleanup)
        if not args.workdir or not args.lifeboat:
                ap.error("--workdir and --lifeboat are needed")
        if os.geteuid() != 0:
                print("demo_driver: needs root (loop devices, mounts)", file=sys.stderr)
                return 2

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        demo = Demo(args.workdir.resolve(), os.path.abspath(args.lifeboat))
        rc = 1
        try:
                rc = demo.run()
        except DemoError as e:
                print(f"\ndemo FAILED: {e}", file=sys.stderr)
                print(f"logs: {args.workdir}/logs", file=sys.stderr)
        except lbtest.Failure as e:
                print(f"\ndemo FAILED: {e}", file=sys.stderr)
                print(f"logs: {args.workdir}/logs", file=sys.stderr)
        except Interrupted as e:
                print(f"\ndemo interrupted ({e}): cleaning up", file=sys.stderr)
                rc = 128 + e.signum
        except BrokenPipeError:
                rc = 1                  # the reader went away (| head): just clean up
        except Exception:
                traceback.print_exc()
                print(f"demo FAILED (a bug in the demo); logs: {args.workdir}/logs", file=sys.stderr)
        finally:
                # Cleanup must not be cut short by a second Ctrl-C.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                problems = demo.close()
                for p in problems:
                        print(f"demo cleanup: {p}", file=sys.stderr)
                if problems and rc == 0:
                        rc = 1
        return rc


if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
