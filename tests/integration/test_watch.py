# SPDX-License-Identifier: MIT
"""lifeboat watch against the fake AWS (real loop devices) and the stand-in fluentd:
notices (spot, ASG Terminated, rebalance), SIGTERM, the flushed/dirty tag of the own
buffer volume, the release of recovered volumes, IMDS blips and token expiry."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import lbtest
from lbtest import chunk_files, iso_in, record, write_chunks

POLL_S = 0.2
PREFIX = "lifeboat"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class Fluentd(lbtest.FakeFluentd):
        """A running tests/fakefluentd.py: the live output buffers in <buffer mount>/s3,
        recovery snippets come from the instance's fluentd.d."""

        def __init__(self, base: Path, live: Path, conf_dir: Path, *extra: str):
                live.mkdir(parents=True, exist_ok=True)
                super().__init__(live, conf_dir, base / "s3-bucket.log", base / "fakefluentd.log",
                                 base / "fluentd.ready", "--interval", "0.2", "--reload-delay", "0.1", *extra)


class Watch:
        """lifeboat watch in the background, its log in a file (a pipe nobody reads could
        fill up and block it). Registered with the fake, so teardown stops it too."""

        def __init__(self, fake: lbtest.FakeAWS, env: dict[str, str], logfile: Path, *args: str):
                self.logfile = logfile
                self.err = open(logfile, "w")
                self.proc = subprocess.Popen([lbtest.lifeboat_bin(), "watch", *args], env=env,
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err)
                fake.children.append(self.proc)

        def log(self) -> str:
                return self.logfile.read_text()

        def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
                if self.proc.poll() is None:
                        self.proc.send_signal(sig)
                rc = self.proc.wait(timeout)
                self.err.close()
                return rc

        def alive(self) -> bool:
                return self.proc.poll() is None


class Instance:
        """A fake instance after `lifeboat boot`: own buffer formatted and mounted, and
        optionally a dirty volume of a terminated instance recovered."""

        def __init__(self, fake: lbtest.FakeAWS, tmp: Path, recover: dict[str, bytes] | None = None,
                     own: bool = True, **settings: str):
                self.fake = fake
                self.tmp = tmp
                self.old_volume = None
                self.old_image = None
                if recover is not None:
                        self.old_image = tmp / "old-buffer.img"
                        self.old_volume, _ = fake.add_orphan(self.old_image, "test-group", "i-0000000000000dead",
                                                             files=recover, tag_uuid=None)
                self.info = fake.add_instance(buffer={"device": "/dev/sdf", "size_gib": 1} if own else None)
                self.iid = self.info["instance_id"]
                self.own_volume = self.info.get("buffer_volume_id")
                self.env = fake.env_for(self.info)
                self.env.update({
                        "LIFEBOAT_POLL_INTERVAL": "200ms",
                        "LIFEBOAT_SETTLE": "1s",
                        "LIFEBOAT_FLUSH_TIMEOUT": "10s",
                        "LIFEBOAT_FLUSH_MARGIN": "10s",
                        "LIFEBOAT_FLUENTD_RPC": "http://127.0.0.1:9",     # nothing listens until fluentd starts
                })
                if own:
                        self.env["LIFEBOAT_BUFFER_DEVICE"] = "/dev/sdf"
                self.env.update(settings)
                self.buffer = Path(self.env["LIFEBOAT_BUFFER_MOUNT"])
                self.live = self.buffer / "s3"
                self.run_dir = Path(self.env["LIFEBOAT_RUN_DIR"])
                self.conf_dir = Path(self.env["LIFEBOAT_FLUENTD_CONF_DIR"])
                r = lbtest.run_lifeboat(self.env, "boot")
                assert r.returncode == 0, r.stdout + r.stderr
                self.fluentd: Fluentd | None = None

        def start_fluentd(self, *extra: str) -> Fluentd:
                self.fluentd = Fluentd(self.tmp, self.live, self.conf_dir, *extra)
                self.env["LIFEBOAT_FLUENTD_RPC"] = self.fluentd.url
                return self.fluentd

        def watch(self, *args: str, name: str = "watch.log") -> Watch:
                return Watch(self.fake, self.env, self.tmp / name, *args)

        def tags(self, vid: str | None = None) -> dict[str, str]:
                return self.fake.volume(vid or self.own_volume)["tags"]

        def state(self) -> dict:
                return json.loads((self.run_dir / "watch.json").read_text())

        def peek(self) -> dict:
                """The state, or {} before watch wrote it (for wait_for predicates)."""
                try:
                        return self.state()
                except FileNotFoundError:
                        return {}

        def recovery_path(self) -> Path:
                return Path(self.env["LIFEBOAT_RECOVERY_ROOT"]) / self.old_volume


@pytest.fixture
def cluster(fake: lbtest.FakeAWS, tmp_path: Path):
        """Makes Instances; stops their fluentd before the fake's teardown cleans up."""
        made: list[Instance] = []

        def make(**kw: Any) -> Instance:
                i = Instance(fake, tmp_path, **kw)
                made.append(i)
                return i

        yield make
        for i in made:
                for p in fake.children:
                        if p.poll() is None:
                                p.send_signal(signal.SIGINT)    # twice: do not wait for a drain
                                time.sleep(0.05)
                                p.send_signal(signal.SIGINT)
                for p in fake.children:
                        try:
                                p.wait(10)
                        except subprocess.TimeoutExpired:
                                p.kill()
                                p.wait()
                if i.fluentd:
                        i.fluentd.stop()


def chunk_image_files(records: int, start: int = 1, per_chunk: int = 100) -> dict[str, str]:
        """Chunk files (and their .meta) as fluentd left them in <volume>/s3."""
        files = {}
        n, i = start, 0
        while n < start + records:
                count = min(per_chunk, start + records - n)
                cid = f"{i:032x}"
                files[f"s3/buffer.b{cid}.log"] = "".join(record(k) + "\n" for k in range(n, n + count))
                files[f"s3/buffer.b{cid}.log.meta"] = json.dumps({"tag": "app.log", "s": count})
                n += count
                i += 1
        return files


def wait_for(what: str, predicate, timeout: float = 15, interval: float = 0.02):
        return lbtest.wait_for(what, predicate, timeout, interval)


def assert_exactly_once(lines: list[str], first: int, last: int) -> None:
        counts = collections.Counter(lines)
        assert not [l for l, c in counts.items() if c > 1], "records shipped twice"
        assert set(lines) == {record(n) for n in range(first, last + 1)}


def own_state(inst: Instance) -> str | None:
        try:
                return inst.state()["own"]["state"]
        except (OSError, ValueError, KeyError):
                return None


# ---------------------------------------------------------------------------
# the own buffer volume
# ---------------------------------------------------------------------------

def test_spot_notice_drains_and_tags_flushed(cluster):
        inst = cluster()
        write_chunks(inst.live, 350)
        fl = inst.start_fluentd("--flush-delay", "0.5")
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        time.sleep(3 * POLL_S)
        assert fl.status()["flush_requests"] == 0, "no flush before a notice"
        assert not (inst.buffer / ".lifeboat-flushed").exists()

        # The notice shows in IMDS one second from now; the reaction follows within one poll.
        inst.fake.events(inst.iid, spot={"action": "terminate", "time": iso_in(120)}, spot_after_s=1)
        visible = time.monotonic() + 1
        time.sleep(0.8)
        assert fl.status()["flush_requests"] == 0
        wait_for("a flush request", lambda: fl.status()["flush_requests"] >= 1, timeout=5, interval=0.01)
        latency = time.monotonic() - visible
        print(f"notice -> flush request: {latency * 1000:.0f} ms (poll interval {POLL_S * 1000:.0f} ms)")
        assert latency < POLL_S + 0.5

        wait_for("the own volume tagged flushed", lambda: inst.tags().get(f"{PREFIX}:state") == "flushed")
        tags = inst.tags()
        flushed_at = dt.datetime.strptime(tags[f"{PREFIX}:flushed-at"], "%Y-%m-%dT%H:%M:%SZ")
        assert abs((flushed_at.replace(tzinfo=dt.timezone.utc) - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 30
        assert chunk_files(inst.buffer) == []
        assert_exactly_once(fl.shipped(), 1, 350)
        marker = json.loads((inst.buffer / ".lifeboat-flushed").read_text())
        assert marker["instance"] == inst.iid and marker["volume"] == inst.own_volume
        assert marker["time"] == tags[f"{PREFIX}:flushed-at"]

        wait_for("watch.json to say flushed", lambda: own_state(inst) == "flushed", timeout=2)
        st = inst.state()
        assert st["own"]["state"] == "flushed" and st["own"]["chunk_files"] == 0
        assert st["own"]["volume_id"] == inst.own_volume
        assert st["ending"] is True
        assert [(n["trigger"], n["detail"]) for n in st["notices"]] == [("spot", "terminate")]

        # Still running: the instance may not die at once. A stop now is the final check.
        assert w.alive()
        assert w.stop() == 0
        log = w.log()
        assert log.count("spot interruption notice: terminate") == 1, log
        assert log.count("tagged flushed") >= 1 and "NOT drained" not in log, log
        assert inst.tags()[f"{PREFIX}:state"] == "flushed"


def test_stuck_fluentd_leaves_volume_dirty_and_reports(cluster):
        inst = cluster(LIFEBOAT_FLUSH_TIMEOUT="2s")
        chunks = write_chunks(inst.live, 250)
        size = sum(c.stat().st_size for c in chunks)
        fl = inst.start_fluentd("--stuck")
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        inst.fake.events(inst.iid, lifecycle_state="Terminated")
        wait_for("the own volume to be draining", lambda: own_state(inst) == "draining", timeout=5)
        wait_for("the deadline to pass", lambda: own_state(inst) == "undrained", timeout=10)
        assert fl.status()["flush_requests"] >= 1
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        assert not (inst.buffer / ".lifeboat-flushed").exists()
        st = inst.state()
        assert st["own"]["chunk_files"] == 3 and st["own"]["chunk_bytes"] == size
        assert [n["trigger"] for n in st["notices"]] == ["asg"]
        log = w.log()
        assert f"NOT drained by the deadline: 3 chunk file(s), {size} bytes remain" in log, log

        # A stop with the volume still dirty exits 1 (the next boot recovers it).
        assert w.stop() == 1
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        assert len(chunk_files(inst.live)) == 3


def test_chunk_after_flushed_tag_turns_dirty_again(cluster):
        inst = cluster()
        write_chunks(inst.live, 100)
        fl = inst.start_fluentd("--flush-delay", "0.3")
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        inst.fake.events(inst.iid, spot={"action": "stop", "time": iso_in(100)})
        wait_for("flushed", lambda: inst.tags().get(f"{PREFIX}:state") == "flushed")
        assert (inst.buffer / ".lifeboat-flushed").exists()

        # fluentd still takes logs after the flush: the volume must never stay flushed with a chunk.
        fl.mode(stuck=True)
        write_chunks(inst.live, 10, start=101)
        t0 = time.monotonic()
        wait_for("dirty again", lambda: inst.tags().get(f"{PREFIX}:state") == "dirty", timeout=5, interval=0.01)
        print(f"chunk appeared -> tagged dirty: {(time.monotonic() - t0) * 1000:.0f} ms")
        assert time.monotonic() - t0 < POLL_S + 1.0
        assert f"{PREFIX}:flushed-at" not in inst.tags()
        assert not (inst.buffer / ".lifeboat-flushed").exists()
        wait_for("watch.json to say draining", lambda: own_state(inst) == "draining", timeout=2)

        # Asked again, fluentd ships it; flushed again.
        fl.mode(stuck=False)
        wait_for("flushed again", lambda: inst.tags().get(f"{PREFIX}:state") == "flushed")
        assert_exactly_once(fl.shipped(), 1, 110)
        assert w.stop() == 0
        assert "tagged dirty again" in w.log()


def test_marker_planted_by_a_container_is_replaced_never_followed(cluster, tmp_path):
        """fluentd's container writes the buffer volume as root. A symlink at the marker's name
        (to a host file) is replaced by the marker and, later, removed, never followed; FIFOs at
        the temporary names lifeboat once used (NAME.tmp.PID) block nothing."""
        inst = cluster()
        victim = tmp_path / "host" / "shadow"
        victim.parent.mkdir()
        victim.write_text("root:*:19000:0:99999:7:::\n")
        marker = inst.buffer / ".lifeboat-flushed"
        marker.symlink_to(victim)
        fl = inst.start_fluentd("--flush-delay", "0.3")
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        for name in (f".lifeboat-flushed.tmp.{w.proc.pid}", f".lifeboat-flushed.tmp.{w.proc.pid + 1}"):
                os.mkfifo(inst.buffer / name)
        os.mkfifo(inst.run_dir / f"watch.json.tmp.{w.proc.pid}")

        inst.fake.events(inst.iid, spot={"action": "terminate", "time": iso_in(100)})
        wait_for("flushed", lambda: inst.tags().get(f"{PREFIX}:state") == "flushed", timeout=10)
        assert not marker.is_symlink()
        assert json.loads(marker.read_text())["volume"] == inst.own_volume
        assert victim.read_text() == "root:*:19000:0:99999:7:::\n"
        wait_for("watch.json to say flushed", lambda: own_state(inst) == "flushed", timeout=5)

        # Planted again, then a chunk turns the volume dirty: the link goes, not its target.
        marker.unlink()
        marker.symlink_to(victim)
        fl.mode(stuck=True)
        write_chunks(inst.live, 5)
        wait_for("dirty again", lambda: inst.tags().get(f"{PREFIX}:state") == "dirty", timeout=5)
        wait_for("the planted marker removed", lambda: not marker.is_symlink(), timeout=5)
        assert victim.read_text() == "root:*:19000:0:99999:7:::\n"
        assert w.alive()
        fl.mode(stuck=False)


def test_failed_dirty_tag_is_retried_through_the_stop(cluster):
        """A chunk appears under the flushed tag and CreateTags fails: the volume holds a chunk
        but EC2 still says flushed (reap would delete it once the instance is gone). A stop
        must not end watch as if it were drained: it keeps trying to tag it dirty."""
        inst = cluster(LIFEBOAT_FLUSH_TIMEOUT="20s")
        w = inst.watch()        # no fluentd: nothing to flush, the volume is empty
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        inst.fake.events(inst.iid, spot={"action": "stop", "time": iso_in(100)})
        wait_for("flushed", lambda: inst.tags().get(f"{PREFIX}:state") == "flushed")

        inst.fake.fault(action="CreateTags", kind="5xx", count=-1)
        write_chunks(inst.live, 10)
        wait_for("the failed CreateTags", lambda: "CreateTags lifeboat:state=dirty" in w.log(), timeout=10)
        assert not (inst.buffer / ".lifeboat-flushed").exists(), "the marker no longer holds"
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert w.alive(), "watch stopped with a chunk under the flushed tag:\n" + w.log()
        assert inst.tags()[f"{PREFIX}:state"] == "flushed"

        inst.fake.reset_faults()
        # dirty (CreateTags), then the stale flushed-at removed (DeleteTags): two calls, wait for both.
        wait_for("dirty at last, without the old flushed-at",
                 lambda: (t := inst.tags()).get(f"{PREFIX}:state") == "dirty" and f"{PREFIX}:flushed-at" not in t,
                 timeout=10)
        assert w.stop(signal.SIGINT, timeout=10) == 1
        assert "NOT drained" in w.log()


def test_own_volume_boot_could_not_tag_is_tagged_dirty(fake, tmp_path):
        """boot mounted the own volume but its CreateTags failed (exit 3; ECS starts anyway):
        fluentd writes to a volume without a state tag, which no boot recovers and
        `reap --delete-unused` deletes once detached. watch tags it dirty."""
        info = fake.add_instance(buffer={"device": "/dev/sdf", "size_gib": 1})
        vid = info["buffer_volume_id"]
        env = fake.env_for(info)
        env.update({"LIFEBOAT_BUFFER_DEVICE": "/dev/sdf", "LIFEBOAT_FLUENTD_RPC": "",
                    "LIFEBOAT_BOOT_TIMEOUT": "2s"})
        fake.fault(action="CreateTags", kind="5xx", count=-1)
        r = lbtest.run_lifeboat(env, "boot")
        assert r.returncode == 3, r.stdout + r.stderr
        buffer = Path(env["LIFEBOAT_BUFFER_MOUNT"])
        assert any(m["target"] == str(buffer.resolve()) for m in lbtest.mounts())
        assert f"{PREFIX}:state" not in fake.volume(vid)["tags"]
        write_chunks(buffer / "s3", 10)

        fake.reset_faults()
        r = lbtest.run_lifeboat(env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        assert fake.volume(vid)["tags"][f"{PREFIX}:state"] == "dirty", r.stderr
        assert "no state tag" in r.stderr


def test_own_volume_unmounted_under_watch_is_never_tagged_flushed(cluster):
        """The buffer mount disappears (unmounted by hand, a failed remount): the scan then reads
        the empty directory beneath it. That must not pass for "drained"."""
        inst = cluster(LIFEBOAT_FLUSH_TIMEOUT="2s")
        write_chunks(inst.live, 10)
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        lbtest.run(["umount", str(inst.buffer)])
        assert chunk_files(inst.buffer) == []          # what a scan sees now
        inst.fake.events(inst.iid, spot={"action": "terminate", "time": iso_in(100)})
        wait_for("the refusal", lambda: "no longer mounted" in w.log(), timeout=5)
        time.sleep(3 * POLL_S)
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        assert w.stop(signal.SIGINT, timeout=10) == 1


def test_rebalance_flushes_early_and_tags_nothing(cluster):
        inst = cluster()
        write_chunks(inst.live, 50)
        fl = inst.start_fluentd()
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        inst.fake.events(inst.iid, rebalance={})
        wait_for("a flush request", lambda: fl.status()["flush_requests"] == 1, timeout=5)
        wait_for("the live chunks shipped", lambda: chunk_files(inst.live) == [])
        time.sleep(5 * POLL_S)
        assert fl.status()["flush_requests"] == 1, "one flush per recommendation"
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        assert own_state(inst) == "dirty"
        st = inst.state()
        assert [n["trigger"] for n in st["notices"]] == ["rebalance"] and st["ending"] is False
        assert w.alive()
        # A stop after that: nothing left, so the final check tags it flushed.
        assert w.stop() == 0
        assert inst.tags()[f"{PREFIX}:state"] == "flushed"


def test_sigterm_is_the_final_check(cluster):
        inst = cluster()
        write_chunks(inst.live, 200)
        fl = inst.start_fluentd("--flush-delay", "0.5")
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        t0 = time.monotonic()
        rc = w.stop(signal.SIGTERM, timeout=15)
        assert rc == 0, w.log()
        assert time.monotonic() - t0 < 5
        assert fl.status()["flush_requests"] >= 1
        assert inst.tags()[f"{PREFIX}:state"] == "flushed"
        assert chunk_files(inst.buffer) == []
        assert (inst.buffer / ".lifeboat-flushed").exists()
        assert_exactly_once(fl.shipped(), 1, 200)
        assert [n["detail"] for n in inst.state()["notices"]] == ["SIGTERM"]
        assert "SIGTERM (stopping): draining the buffer volume" in w.log()


def test_sigterm_with_stuck_fluentd_exits_dirty_by_the_deadline(cluster):
        inst = cluster(LIFEBOAT_FLUSH_TIMEOUT="2s")
        write_chunks(inst.live, 20)
        inst.start_fluentd("--stuck")
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        t0 = time.monotonic()
        assert w.stop(signal.SIGTERM, timeout=15) == 1
        took = time.monotonic() - t0
        assert 1.8 <= took < 5, took
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        assert "stopping with own buffer volume" in w.log() and "1 chunk file(s)" in w.log()


def test_sigterm_after_fluentd_is_gone_does_not_wait_the_whole_timeout(cluster):
        """At shutdown fluentd stopped before watch: with nobody draining and nothing
        changing, the stop path gives up early rather than holding the shutdown."""
        inst = cluster(LIFEBOAT_FLUSH_TIMEOUT="60s")
        write_chunks(inst.live, 20)
        w = inst.watch()        # no fluentd at all: its RPC refuses connections
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        t0 = time.monotonic()
        assert w.stop(signal.SIGTERM, timeout=30) == 1
        assert time.monotonic() - t0 < 15
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        log = w.log()
        assert "cannot ask fluentd to flush" in log and "not waiting any longer" in log, log


def test_second_signal_stops_waiting(cluster):
        inst = cluster(LIFEBOAT_FLUSH_TIMEOUT="60s")
        write_chunks(inst.live, 20)
        inst.start_fluentd("--stuck")
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        w.proc.send_signal(signal.SIGTERM)
        wait_for("draining", lambda: own_state(inst) == "draining", timeout=5)
        t0 = time.monotonic()
        assert w.stop(signal.SIGINT, timeout=10) == 1
        assert time.monotonic() - t0 < 3


def test_spot_notice_already_past_the_margin_with_once(cluster):
        inst = cluster()
        write_chunks(inst.live, 20)
        inst.start_fluentd("--stuck")
        # No notice: one quiet cycle, exit 0, state written.
        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        assert inst.state()["own"]["state"] == "dirty"
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        # Interruption in 5 s, margin 10 s: the deadline is already gone.
        inst.fake.events(inst.iid, spot={"action": "terminate", "time": iso_in(5)})
        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 1, r.stderr
        assert "NOT drained by the deadline" in r.stderr
        assert inst.state()["own"]["state"] == "undrained"
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"


def test_imds_blips_and_token_expiry_are_survived(cluster):
        inst = cluster()
        write_chunks(inst.live, 30)
        fl = inst.start_fluentd("--flush-delay", "0.2")
        fake = inst.fake
        fake.config(token_ttl_max=1)        # tokens die after 1 s although 21600 s were asked for
        w = inst.watch()
        wait_for("watch to confirm the own volume", lambda: own_state(inst) == "dirty")
        time.sleep(2.5)
        fake.config(imds_mode="500")        # every IMDS answer a 500 for a while
        wait_for("the failure recorded", lambda: inst.peek().get("imds_ok") is False, timeout=10)
        time.sleep(1)
        fake.config(imds_mode="up")
        fake.fault(action="imds", kind="5xx", status=503, count=2, path="spot")  # absorbed by retries
        wait_for("IMDS ok again", lambda: inst.peek().get("imds_ok") is True, timeout=10)
        time.sleep(1.5)
        assert w.alive()

        fake.events(inst.iid, spot={"action": "terminate", "time": iso_in(110)})
        wait_for("flushed", lambda: inst.tags().get(f"{PREFIX}:state") == "flushed")
        assert fl.status()["flush_requests"] >= 1

        reqs = fake.requests("imds")
        # fake.events() reset the log; it still shows tokens dying and being replaced.
        assert any(r["status"] == 401 for r in reqs), "token expiry was not exercised"
        assert sum(1 for r in reqs if r["action"] == "/latest/api/token") >= 2
        assert w.stop() == 0
        log = w.log()
        assert log.count("IMDS poll failed") == 1, log
        assert "IMDS answers again" in log


# ---------------------------------------------------------------------------
# recovered volumes
# ---------------------------------------------------------------------------

def test_recovered_volume_drained_is_released(cluster, tmp_path: Path):
        backup = tmp_path / "fluentd-backup"
        inst = cluster(recover=chunk_image_files(420), LIFEBOAT_FLUENTD_BACKUP_DIR=str(backup))
        old = inst.old_volume
        mnt = inst.recovery_path()
        snippet = inst.conf_dir / f"{old}.conf"
        manifest = json.loads((inst.run_dir / "recovered.json").read_text())
        assert [v["volume_id"] for v in manifest["volumes"]] == [old]
        assert snippet.exists() and len(chunk_files(mnt)) == 5
        loop = next(l for l in lbtest.loop_devices() if l["back-file"] == str(inst.old_image))
        # One chunk fluentd could not read went to its backup directory (@id names the volume).
        bad = backup / "backup" / "worker0" / f"lifeboat_{old}_s3" / "5f3e0a.log"
        bad.parent.mkdir(parents=True)
        bad.write_text("garbage")

        fl = inst.start_fluentd("--stuck")     # reads the snippet; ships nothing yet
        w = inst.watch()
        wait_for("watch to track the recovered volume",
                 lambda: [r["state"] for r in inst.peek().get("recovered", [])] == ["draining"])
        assert inst.state()["recovered"][0]["chunk_files"] == 5
        fl.mode(stuck=False)            # the recovery output ships the resumed chunks by itself
        wait_for("the recovered chunks shipped", lambda: chunk_files(mnt) == [], timeout=20)
        wait_for("the recovered volume released",
                 lambda: [r["state"] for r in inst.peek().get("recovered", [])] == ["released"], timeout=20)

        tags = inst.tags(old)
        assert tags[f"{PREFIX}:state"] == "flushed" and f"{PREFIX}:flushed-at" in tags
        assert not snippet.exists()
        wait_for("fluentd to drop the recovery output", lambda: fl.status()["recovery_paths"] == [], timeout=5)
        assert fl.status()["reloads"] >= 1
        assert not any(m["target"] == str(mnt) for m in lbtest.mounts())
        assert not mnt.exists()
        v = inst.fake.wait_volume(old, "available")
        assert v["attachments"] == []
        wait_for("its loop device gone",
                 lambda: all(l["name"] != loop["name"] or l["back-file"] != str(inst.old_image)
                             for l in lbtest.loop_devices()), timeout=10)
        assert json.loads((inst.run_dir / "recovered.json").read_text())["volumes"] == []
        assert_exactly_once(fl.shipped(), 1, 420)
        rec = inst.state()["recovered"][0]
        assert rec["volume_id"] == old and rec["backup_files"] == 1 and rec["released_at"]
        # The own volume is untouched by all this.
        assert inst.tags()[f"{PREFIX}:state"] == "dirty"
        assert w.alive()
        w.stop()
        log = w.log()
        assert log.count(f"released {old}") == 1, log
        assert "backup directory" in log and "NOT delivered" in log


def test_recovered_volume_waits_for_the_settle_period_and_for_new_chunks(cluster):
        inst = cluster(recover=chunk_image_files(100), own=False, LIFEBOAT_SETTLE="2s")
        old = inst.old_volume
        mnt = inst.recovery_path()
        w = inst.watch()
        wait_for("draining", lambda: [r["state"] for r in inst.peek().get("recovered", [])] == ["draining"])
        # Nothing ships (fluentd not running): it stays attached and dirty.
        time.sleep(1)
        assert inst.tags(old)[f"{PREFIX}:state"] == "dirty"
        for c in chunk_files(mnt):
                c.unlink()
        wait_for("settling", lambda: inst.peek().get("recovered", [])[0]["state"] == "settling")
        # A chunk that comes back resets the clock.
        write_chunks(mnt / "s3", 5, per_chunk=5)
        wait_for("draining again", lambda: inst.peek().get("recovered", [])[0]["state"] == "draining")
        time.sleep(2.5)
        assert inst.tags(old)[f"{PREFIX}:state"] == "dirty"
        t0 = time.monotonic()
        for c in chunk_files(mnt):
                c.unlink()
        wait_for("released", lambda: inst.peek().get("recovered", [])[0]["state"] == "released", timeout=10)
        assert time.monotonic() - t0 >= 2.0
        assert inst.tags(old)[f"{PREFIX}:state"] == "flushed"
        inst.fake.wait_volume(old, "available")
        assert inst.state()["own"]["state"] == "none"
        # No own volume: a stop has nothing to drain.
        assert w.stop() == 0


def test_busy_recovered_volume_is_retried(cluster):
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        for c in chunk_files(mnt):
                c.unlink()
        holder = open(mnt / "s3" / "held-open", "w")      # keeps the mount busy
        try:
                r = lbtest.run_lifeboat(inst.env, "watch", "--once")
                assert r.returncode == 0, r.stderr
                assert "cannot unmount" in r.stderr
                assert inst.tags(old)[f"{PREFIX}:state"] == "flushed"
                assert any(m["target"] == str(mnt) for m in lbtest.mounts())
                assert inst.fake.volume(old)["attachments"]
                assert [v["volume_id"] for v in json.loads((inst.run_dir / "recovered.json").read_text())["volumes"]] \
                        == [old]
        finally:
                holder.close()
        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        assert not any(m["target"] == str(mnt) for m in lbtest.mounts())
        inst.fake.wait_volume(old, "available")
        assert json.loads((inst.run_dir / "recovered.json").read_text())["volumes"] == []


def test_restarted_watch_tags_dirty_what_an_earlier_one_tagged_flushed(cluster):
        """An earlier watch tagged a recovered volume flushed, could not unmount it (busy) and
        stopped. Chunks appear on it before the next watch starts: that one does not know the
        earlier one's tag, and tags it dirty rather than leave chunks under "flushed"."""
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        for c in chunk_files(mnt):
                c.unlink()
        holder = open(mnt / "s3" / "held-open", "w")      # keeps the mount busy
        try:
                r = lbtest.run_lifeboat(inst.env, "watch", "--once")
                assert r.returncode == 0, r.stderr
                assert inst.tags(old)[f"{PREFIX}:state"] == "flushed"
                write_chunks(mnt / "s3", 3, per_chunk=5)
        finally:
                holder.close()
        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        tags = inst.tags(old)
        assert tags[f"{PREFIX}:state"] == "dirty" and f"{PREFIX}:flushed-at" not in tags, r.stderr
        assert any(m["target"] == str(mnt) for m in lbtest.mounts())
        assert inst.fake.volume(old)["attachments"]


def test_unscannable_tree_after_the_flushed_tag_turns_it_dirty(cluster):
        """Tagged flushed, the unmount busy: what appears before the next try is scanned again,
        and a tree the scan cannot read (deeper than it goes) is not taken for empty."""
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        for c in chunk_files(mnt):
                c.unlink()
        holder = open(mnt / "s3" / "held-open", "w")
        try:
                w = inst.watch()
                wait_for("flushed", lambda: inst.tags(old).get(f"{PREFIX}:state") == "flushed")
                deep = mnt / "s3"
                for _ in range(20):
                        deep = deep / "d"
                deep.mkdir(parents=True)
                wait_for("dirty again", lambda: inst.tags(old).get(f"{PREFIX}:state") == "dirty")
                assert "cannot be scanned for chunk files" in w.log()
                assert inst.fake.volume(old)["attachments"]
        finally:
                holder.close()
        w.stop()


def devno_of(inst: Instance) -> str:
        """major:minor of the recovered volume's device, as mountinfo shows it."""
        m = lbtest.mount_of(inst.recovery_path())
        assert m is not None
        return m["maj:min"]


def holder_in_namespace(inst: Instance, open_file: Path | None = None) -> lbtest.NamespaceHolder:
        """A process in a private mount namespace holding a copy of the recovered mount, as
        fluentd in a container does (Docker binds rprivate); stopped by the fixtures."""
        h = lbtest.NamespaceHolder(open_file)
        inst.fake.children.append(h.proc)
        return h


def test_release_goes_through_a_container_mount_namespace(cluster):
        """A container holds its own copy of the recovered mount: watch unmounts it there too
        (entering its namespace), and only then detaches; the container lives on."""
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        devno = devno_of(inst)
        holder = holder_in_namespace(inst)
        assert holder.namespace() != lbtest.mount_namespace()
        assert [m["target"] for m in holder.mounts() if m["maj:min"] == devno] == [str(mnt)]
        for c in chunk_files(mnt):
                c.unlink()

        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        assert f"in mount namespace mnt:[{holder.namespace()}]" in r.stderr, r.stderr
        assert not [m for m in lbtest.mounts() if m["maj:min"] == devno]
        assert not [m for m in holder.mounts() if m["maj:min"] == devno]
        assert not mnt.exists()
        v = inst.fake.wait_volume(old, "available")
        assert v["attachments"] == [] and v["tags"][f"{PREFIX}:state"] == "flushed"
        assert inst.state()["recovered"][0]["state"] == "released"
        assert inst.state()["recovered"][0]["holders"] == []
        assert json.loads((inst.run_dir / "recovered.json").read_text())["volumes"] == []
        assert holder.alive(), "nothing is killed"


def test_file_open_in_a_container_keeps_the_volume_attached_until_closed(cluster):
        """A file still open in the container's copy: watch says which process holds it (log,
        watch.json, lifeboat status), keeps the volume flushed and attached, kills nothing,
        and retries every poll; once the file is closed the release finishes."""
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        devno = devno_of(inst)
        (mnt / "s3" / "kept-open.txt").write_text("held by the container\n")
        holder = holder_in_namespace(inst, open_file=mnt / "s3" / "kept-open.txt")
        ns = holder.namespace()
        for c in chunk_files(mnt):
                c.unlink()

        w = inst.watch()
        wait_for("the busy holder reported",
                 lambda: (inst.peek().get("recovered") or [{}])[0].get("holders"), timeout=20)
        rec = inst.state()["recovered"][0]
        assert rec["state"] == "tagged"
        assert rec["holders"] == [{"pid": holder.pid, "comm": "python3", "mnt_ns": ns}]
        assert rec["holders_total"] == 1
        time.sleep(1)           # several polls: nothing changes, nothing is forced
        assert inst.tags(old)[f"{PREFIX}:state"] == "flushed"
        att = inst.fake.volume(old)["attachments"]
        assert att and att[0]["status"] == "attached", att
        assert [m for m in holder.mounts() if m["maj:min"] == devno]
        assert lbtest.mount_of(mnt) is not None, "the host mount stays until every copy is gone"
        assert holder.alive()

        st = lbtest.run_lifeboat(inst.env, "status", "--json")
        assert st.returncode == 0, st.stderr
        shown = json.loads(st.stdout)["watch"]["state"]["recovered"][0]
        assert shown["holders"][0]["pid"] == holder.pid
        text = lbtest.run_lifeboat(inst.env, "status")
        assert f"BUSY, still in use by pid {holder.pid} (python3) in mount namespace mnt:[{ns}]" in text.stdout, \
                text.stdout

        holder.close_file()
        wait_for("the release", lambda: inst.peek()["recovered"][0]["state"] == "released", timeout=20)
        inst.fake.wait_volume(old, "available")
        assert not [m for m in holder.mounts() if m["maj:min"] == devno]
        assert lbtest.mount_of(mnt) is None and not mnt.exists()
        assert inst.state()["recovered"][0]["holders"] == []
        assert holder.alive()
        assert w.stop() == 0
        log = w.log()
        assert log.count(f"pid {holder.pid} (python3) in mount namespace mnt:[{ns}]") == 1, log
        assert "nothing is killed" in log and f"released {old}" in log


def test_unmounted_recovered_volume_is_never_tagged(cluster):
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        lbtest.run(["umount", str(mnt)])
        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        assert "is not mounted" in r.stderr
        assert inst.tags(old)[f"{PREFIX}:state"] == "dirty"
        assert inst.state()["recovered"][0]["state"] == "missing"
        assert inst.fake.volume(old)["attachments"]


def test_release_killed_after_the_unmount_is_finished_on_restart(cluster):
        """kill -9 (or a crash) between watch's unmount and its DetachVolume: the volume is
        tagged flushed, unmounted, its mount point removed, still attached and in the
        manifest. The restarted watch finishes the release instead of leaving it attached
        for the rest of the instance's life."""
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        for c in chunk_files(mnt):
                c.unlink()
        # What the killed watch had done: tag, snippet, unmount, mount point removed.
        a = inst.fake.ec2("CreateTags", {"ResourceId.1": old, "Tag.1.Key": f"{PREFIX}:state",
                                         "Tag.1.Value": "flushed", "Tag.2.Key": f"{PREFIX}:flushed-at",
                                         "Tag.2.Value": iso_in(0)})
        assert a.status == 200, a.text
        (inst.conf_dir / f"{old}.conf").unlink()
        lbtest.run(["umount", str(mnt)])
        mnt.rmdir()

        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        inst.fake.wait_volume(old, "available")
        assert inst.tags(old)[f"{PREFIX}:state"] == "flushed"
        assert json.loads((inst.run_dir / "recovered.json").read_text())["volumes"] == []
        assert inst.state()["recovered"][0]["state"] == "released"


# ---------------------------------------------------------------------------
# status, usage
# ---------------------------------------------------------------------------

def test_status_shows_the_watch_state(cluster):
        inst = cluster(recover=chunk_image_files(10))
        r = lbtest.run_lifeboat(inst.env, "status", "--json")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)["watch"]
        assert st["running"] is False and st["state"] is None
        assert [v["volume_id"] for v in st["recovered"]] == [inst.old_volume]

        w = inst.watch()
        wait_for("watch state", lambda: own_state(inst) == "dirty")
        inst.fake.events(inst.iid, rebalance={})
        wait_for("the notice recorded", lambda: inst.peek().get("notices"))
        r = lbtest.run_lifeboat(inst.env, "status", "--json")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)["watch"]
        assert st["running"] is True
        assert st["state"]["own"]["state"] == "dirty" and st["state"]["own"]["volume_id"] == inst.own_volume
        assert st["state"]["notices"][0]["trigger"] == "rebalance"
        assert st["recovered"][0]["watch_state"] == "draining"

        r = lbtest.run_lifeboat(inst.env, "status")
        assert r.returncode == 0, r.stderr
        assert "Watch     running (pid" in r.stdout
        assert "notice: rebalance recommendation" in r.stdout
        assert f"own buffer {inst.own_volume}: in use (dirty)" in r.stdout
        assert f"recovered {inst.old_volume} from i-0000000000000dead: draining, 1 chunk file(s)" in r.stdout
        w.stop()
        r = lbtest.run_lifeboat(inst.env, "status")
        assert "Watch     NOT RUNNING" in r.stdout


def test_one_watch_at_a_time_and_usage(cluster):
        inst = cluster()
        w = inst.watch()
        wait_for("watch state", lambda: own_state(inst) == "dirty")
        r = lbtest.run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 2 and "another lifeboat watch is running" in r.stderr
        r = lbtest.run_lifeboat(inst.env, "watch", "--bogus")
        assert r.returncode == 2
        bad = dict(inst.env, LIFEBOAT_CHUNK_PATTERN=r"^\.lifeboat")
        w.stop()
        r = lbtest.run_lifeboat(bad, "watch", "--once")
        assert r.returncode == 2 and "marker" in r.stderr


def test_aws_unreachable_at_start(cluster):
        inst = cluster()
        inst.fake.config(imds_mode="down")
        r = lbtest.run_lifeboat(inst.env, "watch", "--once", timeout=60)
        assert r.returncode == 3, r.stderr
