# SPDX-License-Identifier: MIT
"""tests/fakefluentd.py, the stand-in fluentd of the boot/watch tests and the demo:
its RPC answers, exactly-once shipping, stuck mode, and recovery snippets rendered
from packaging/fluentd/recovery.conf.in."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

import lbtest
from lbtest import record, write_chunks

TEMPLATE = lbtest.SOURCE_DIR / "packaging" / "fluentd" / "recovery.conf.in"

CHUNK = re.compile(r"^buffer\.(b|q)[0-9a-f]{32}\.log$")
LIFEBOAT_PATTERN = lbtest.CHUNK_PATTERN
chunks_in = lbtest.chunk_files


def wait_for(cond, timeout: float, what: str, interval: float = 0.05):
        return lbtest.wait_for(what, cond, timeout, interval)


def render_template(mount_path: str, volume_id: str, owner: str = "i-0123456789abcdef0", group: str = "test") -> str:
        """The template rendered by hand, as lifeboat boot would."""
        text = TEMPLATE.read_text()
        for k, v in {"volume_id": volume_id, "mount_path": mount_path, "previous_owner": owner,
                     "group": group}.items():
                text = text.replace("{{" + k + "}}", v)
        assert "{{" not in text
        return text


class Fake(lbtest.FakeFluentd):
        """A running fakefluentd.py in a test directory."""

        def __init__(self, base: Path, *extra: str, conf_files: dict[str, str] | None = None):
                self.base = base
                self.live = base / "live" / "s3"
                self.conf = base / "recovery.d"
                self.live.mkdir(parents=True, exist_ok=True)
                self.conf.mkdir(parents=True, exist_ok=True)
                for name, text in (conf_files or {}).items():
                        (self.conf / name).write_text(text)
                super().__init__(self.live, self.conf, base / "s3-bucket.log", base / "fakefluentd.log",
                                 base / "ready", *extra)

        def get(self, path: str) -> tuple[int, dict]:
                return self.call("GET", path)

        def post_mode(self, body) -> tuple[int, dict]:
                return self.call("POST", "/_fake/mode", body)

        def flush(self) -> None:
                assert self.get("/api/plugins.flushBuffers") == (200, {"ok": True})

        def reload(self) -> None:
                assert self.get("/api/config.reload") == (200, {"ok": True})


@pytest.fixture
def start(tmp_path: Path):
        started: list[Fake] = []

        def _start(*extra: str, conf_files: dict[str, str] | None = None) -> Fake:
                f = Fake(tmp_path, *extra, conf_files=conf_files)
                started.append(f)
                return f

        yield _start
        for f in started:
                f.stop()


def assert_exactly_once(lines: list[str], first: int, last: int) -> None:
        counts = collections.Counter(lines)
        dupes = [l for l, c in counts.items() if c > 1]
        assert not dupes, f"shipped more than once: {dupes[:3]}"
        assert set(lines) == {record(n) for n in range(first, last + 1)}


# ---------------------------------------------------------------------------

def test_writer_names_chunks_like_fluentd(tmp_path: Path):
        d = tmp_path / "buf"
        chunks = write_chunks(d, 250, start=1, per_chunk=100)
        assert len(chunks) == 3
        for c in chunks:
                assert c.parent == d
                assert CHUNK.match(c.name), c.name
                assert LIFEBOAT_PATTERN.search(c.name)
                meta = Path(str(c) + ".meta")
                assert meta.exists() and not LIFEBOAT_PATTERN.search(meta.name)
                assert json.loads(meta.read_text())["tag"] == "app.log"
        lines = [l for c in chunks for l in c.read_text().splitlines()]
        assert sorted(lines) == [record(n) for n in range(1, 251)]
        assert sorted(len(c.read_text().splitlines()) for c in chunks) == [50, 100, 100]
        assert re.fullmatch(r"record 000001 [0-9a-f]{40}", record(1))

        queued = write_chunks(tmp_path / "q", 5, start=1000, per_chunk=2, queued=True)
        assert len(queued) == 3 and all(c.name.startswith("buffer.q") for c in queued)
        assert sorted(l for c in queued for l in c.read_text().splitlines()) == [record(n) for n in range(1000, 1005)]
        # No temporary files are left behind.
        assert sorted(os.listdir(tmp_path / "q")) == sorted([c.name for c in queued] + [c.name + ".meta" for c in queued])


def test_flush_ships_live_chunks_exactly_once(start, tmp_path: Path):
        f = start()
        write_chunks(f.live, 500, per_chunk=64)
        (f.live / "stray.meta").write_text("x")
        (f.live / "notes.txt").write_text("x")
        # A live output ships only when asked to flush.
        time.sleep(1.5)
        assert f.shipped() == []
        assert len(chunks_in(f.live)) == 8

        f.flush()
        wait_for(lambda: not chunks_in(f.live), 10, "the live buffer to drain")
        assert_exactly_once(f.shipped(), 1, 500)
        assert not list(f.live.glob("*.log.meta")), "a shipped chunk's .meta stayed"
        assert (f.live / "stray.meta").exists() and (f.live / "notes.txt").exists()

        # More chunks, another flush: only the new ones arrive, nothing twice.
        write_chunks(f.live, 100, start=501)
        f.flush()
        wait_for(lambda: not chunks_in(f.live), 10, "the second flush")
        assert_exactly_once(f.shipped(), 1, 600)
        st = f.status()
        assert st["flush_requests"] == 2 and st["shipped_records"] == 600 and st["shipped_chunks"] == 9

        # Like one fluentd worker: workerN/ subdirectories are not this output's.
        write_chunks(f.live / "worker1", 10, start=9000)
        f.flush()
        time.sleep(1.0)
        assert len(chunks_in(f.live)) == 1
        assert len(f.shipped()) == 600


def test_answer_comes_before_the_flush_is_done(start):
        f = start("--flush-delay", "1.5")
        write_chunks(f.live, 50)
        t0 = time.monotonic()
        f.flush()
        assert time.monotonic() - t0 < 1.0
        assert len(chunks_in(f.live)) == 1 and f.shipped() == []
        wait_for(lambda: not chunks_in(f.live), 10, "the delayed flush")
        assert time.monotonic() - t0 >= 1.4
        assert_exactly_once(f.shipped(), 1, 50)

        # The delay can be changed at run time.
        assert f.post_mode({"flush_delay": 0})[0] == 200
        write_chunks(f.live, 10, start=51)
        f.flush()
        wait_for(lambda: not chunks_in(f.live), 5, "an immediate flush")
        assert_exactly_once(f.shipped(), 1, 60)


def test_stuck_mode_keeps_chunks(start):
        f = start("--stuck")
        chunks = write_chunks(f.live, 120, per_chunk=50)
        f.flush()
        time.sleep(2.0)
        assert chunks_in(f.live) == sorted(chunks)
        assert all(Path(str(c) + ".meta").exists() for c in chunks)
        assert f.shipped() == []
        assert f.status()["stuck"] is True

        # Bad mode requests are refused and change nothing.
        assert f.post_mode({"stuck": "no"})[0] == 400
        assert f.post_mode({"flush_delay": -1})[0] == 400
        assert f.post_mode([1])[0] == 400
        time.sleep(0.3)
        assert f.shipped() == []

        # Unstuck: the pending flush goes through.
        code, body = f.post_mode({"stuck": False})
        assert code == 200 and body["stuck"] is False
        wait_for(lambda: not chunks_in(f.live), 10, "the flush after unsticking")
        assert_exactly_once(f.shipped(), 1, 120)

        # And stuck again, at run time.
        assert f.post_mode({"stuck": True})[0] == 200
        write_chunks(f.live, 10, start=121)
        f.flush()
        time.sleep(1.0)
        assert len(chunks_in(f.live)) == 1


def test_recovery_snippet_drains_without_flush(start, tmp_path: Path):
        vol = "vol-0abc12345"
        mount = tmp_path / "recovery" / vol
        write_chunks(mount / "s3", 300, per_chunk=100)
        write_chunks(f_live := tmp_path / "live" / "s3", 20, start=5000)    # live chunks stay put
        snippet = render_template(str(mount), vol)
        assert f"path {mount}/s3\n" in snippet

        f = start()
        # Snippets are read at start and reload only.
        (f.conf / f"{vol}.conf").write_text(snippet)
        time.sleep(2.0)
        assert len(chunks_in(mount)) == 3
        assert f.status()["recovery_paths"] == []

        f.reload()
        wait_for(lambda: not chunks_in(mount), 10, "the recovered buffer to drain")
        assert f.status()["recovery_paths"] == [f"{mount}/s3"]
        assert_exactly_once(f.shipped(), 1, 300)
        assert not list((mount / "s3").glob("*.meta"))
        assert len(chunks_in(f_live)) == 1, "recovery must not flush the live buffer"

        # Chunks appearing later in a loaded recovery path ship by themselves (interval flush).
        write_chunks(mount / "s3", 5, start=301)
        wait_for(lambda: not chunks_in(mount), 10, "the interval flush")
        assert_exactly_once(f.shipped(), 1, 305)

        # The snippet removed and reloaded: that output is gone.
        (f.conf / f"{vol}.conf").unlink()
        f.reload()
        wait_for(lambda: f.status()["recovery_paths"] == [], 5, "the reload")
        write_chunks(mount / "s3", 5, start=400)
        time.sleep(2.0)
        assert len(chunks_in(mount)) == 1


def test_recovery_snippet_present_at_start(start, tmp_path: Path):
        vol = "vol-0def45678"
        mount = tmp_path / "recovery" / vol
        write_chunks(mount / "s3", 50, per_chunk=10, queued=True)
        f = start(conf_files={f"{vol}.conf": render_template(str(mount), vol, owner="")})
        wait_for(lambda: not chunks_in(mount), 10, "the recovered buffer to drain")
        assert_exactly_once(f.shipped(), 1, 50)
        assert f.get("/api/nothing")[0] == 404


def test_missing_recovery_path_is_created(start, tmp_path: Path):
        """As fluentd does (why lifeboat writes snippets only after the mount is verified)."""
        vol = "vol-0aaa11111"
        mount = tmp_path / "not-mounted" / vol
        f = start(conf_files={f"{vol}.conf": render_template(str(mount), vol)})
        assert (mount / "s3").is_dir()
        assert f.status()["recovery_paths"] == [f"{mount}/s3"]


def test_bad_snippets(start, tmp_path: Path):
        bad = "<label @X>\n  <match **>\n    <buffer>\n      path {{mount_path}}/s3\n    </buffer>\n  </match>\n</label>\n"
        with pytest.raises(RuntimeError, match="exited 1"):
                start(conf_files={"vol-0bad00000.conf": bad})
        (tmp_path / "recovery.d" / "vol-0bad00000.conf").unlink()

        vol = "vol-0abc12345"
        mount = tmp_path / "recovery" / vol
        f = start(conf_files={f"{vol}.conf": render_template(str(mount), vol)})
        (f.conf / "vol-0bad00000.conf").write_text("<label @Y>\n  <match **>\n</label>\n")
        f.reload()
        wait_for(lambda: f.status()["config_error"], 5, "the reload to fail")
        # The previous configuration stays in force.
        assert f.status()["recovery_paths"] == [f"{mount}/s3"]
        write_chunks(mount / "s3", 10)
        wait_for(lambda: not chunks_in(mount), 10, "the old config to keep draining")


def test_signals(start, tmp_path: Path):
        vol = "vol-0abc12345"
        mount = tmp_path / "recovery" / vol
        f = start("--stuck")
        write_chunks(f.live, 10)
        f.post_mode({"stuck": False})
        time.sleep(1.0)
        assert len(chunks_in(f.live)) == 1          # unstuck is not a flush
        f.proc.send_signal(signal.SIGUSR1)          # fluentd's flush signal
        wait_for(lambda: not chunks_in(f.live), 10, "SIGUSR1 flush")

        (f.conf / f"{vol}.conf").write_text(render_template(str(mount), vol))
        f.proc.send_signal(signal.SIGHUP)           # fluentd's reload signal
        wait_for(lambda: f.status()["recovery_paths"] == [f"{mount}/s3"], 5, "SIGHUP reload")

        # flush_at_shutdown: recovery chunks ship on SIGTERM even before their interval.
        assert f.post_mode({"flush_delay": 60})[0] == 200
        write_chunks(mount / "s3", 7, start=100)
        time.sleep(1.5)
        assert len(chunks_in(mount)) == 1
        assert f.stop() == 0
        assert not chunks_in(mount)
        lines = f.shipped()
        assert sorted(lines) == sorted([record(n) for n in range(1, 11)] + [record(n) for n in range(100, 107)])


def _output_settings(text: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """The first <match **> of a config: its own parameters (and <format>'s, prefixed
        "format."), its <buffer>'s parameters, and the <buffer> chunk keys."""
        out: dict[str, str] = {}
        buf: dict[str, str] = {}
        keys: list[str] = []
        stack: list[str] = []
        for raw in text.splitlines():
                line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
                if not line:
                        continue
                if line.startswith("</"):
                        stack.pop()
                        if not stack and out:
                                break
                        continue
                if line.startswith("<"):
                        name, _, arg = line[1:-1].partition(" ")
                        stack.append(name)
                        if name == "buffer":
                                keys = arg.split(",")
                        continue
                if "match" not in stack:
                        continue
                k, _, v = line.partition(" ")
                if stack[-1] == "match":
                        out[k] = v.strip()
                elif stack[-1] == "format":
                        out["format." + k] = v.strip()
                elif stack[-1] == "buffer":
                        buf[k] = v.strip()
        return out, buf, keys


def test_template_matches_live_config():
        """The recovery output lands records where, and as, the live output would."""
        live_out, live_buf, live_keys = _output_settings((lbtest.SOURCE_DIR / "packaging" / "fluentd" / "fluent.conf").read_text())
        rec_out, rec_buf, rec_keys = _output_settings(render_template("/var/lib/lifeboat/recovery/vol-0abc12345",
                                                                      "vol-0abc12345"))
        assert live_out and rec_out
        for k, v in live_out.items():
                if k != "@id":
                        assert rec_out.get(k) == v, f"{k}: live {v!r}, recovery {rec_out.get(k)!r}"
        assert rec_out["@id"] == "lifeboat_vol-0abc12345_s3" != live_out.get("@id")
        assert rec_keys == live_keys == ["tag", "time"]
        for k in ("@type", "timekey", "timekey_use_utc"):
                assert rec_buf.get(k) == live_buf.get(k), k
        # The live output buffers where the template expects a recovered volume's chunks.
        assert live_buf["path"] == "/var/lib/lifeboat/buffer/s3"
        assert rec_buf["path"] == "/var/lib/lifeboat/recovery/vol-0abc12345/s3"
        # Drains by itself: never the live output's lazy settings.
        assert rec_buf["flush_mode"] == "interval" and "timekey_wait" not in rec_buf
        assert rec_buf["flush_at_shutdown"] == "true" and rec_buf["retry_forever"] == "true"
