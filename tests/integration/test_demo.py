# SPDX-License-Identifier: MIT
"""scripts/demo, end to end: the README's first command must work, prove exactly-once
delivery, leave nothing behind (also after Ctrl-C), and refuse clearly where it cannot run.

The demo runs as a subprocess with LIFEBOAT_BIN set (the binary under test: no rebuild)
and TMPDIR pointing into the test's tmp_path, so its mktemp -d work directory lands there
and the no_leaks fixture checks it too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import lbtest

DEMO = lbtest.SOURCE_DIR / "scripts" / "demo"
PROOF = re.compile(r"^(\d+) records written, (\d+) shipped exactly once, sha256 ([0-9a-f]{64}) matches$", re.M)
STEP = re.compile(r"^\[(\d)/6\] .+ (\d+\.\d) s$", re.M)
REAL_PATHS = ("/var/lib/lifeboat", "/etc/fluent/recovery.d", "/run/lifeboat")


def demo_env(tmp_path: Path) -> dict[str, str]:
        return {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "LIFEBOAT_BIN": lbtest.lifeboat_bin(),
                "TMPDIR": str(tmp_path),
                "LANG": "C.UTF-8",
        }


def processes_mentioning(path: Path) -> list[str]:
        """Processes whose command line or environment names path (the demo's leftovers)."""
        needle = str(path).encode()
        found = []
        for d in Path("/proc").iterdir():
                if not d.name.isdigit() or int(d.name) == os.getpid():
                        continue
                for what in ("cmdline", "environ"):
                        try:
                                data = (d / what).read_bytes()
                        except OSError:
                                continue
                        if needle in data:
                                argv0 = data.split(b"\0")[0].decode(errors="replace") if what == "cmdline" else "?"
                                found.append(f"pid {d.name} ({argv0}) names it in its {what}")
                                break
        return found


def snapshot_real_paths() -> dict[str, list[str] | None]:
        return {p: sorted(os.listdir(p)) if os.path.isdir(p) else None for p in REAL_PATHS}


def assert_nothing_left(tmp_path: Path) -> None:
        left = lbtest.leftovers_under(tmp_path)
        assert not left["mounts"] and not left["loops"], lbtest.describe_leftovers(left)
        assert processes_mentioning(tmp_path) == []


def test_demo_plays_the_story_and_proves_exactly_once(tmp_path: Path) -> None:
        before = snapshot_real_paths()
        r = subprocess.run([str(DEMO)], env=demo_env(tmp_path), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=600)
        out = r.stdout
        assert r.returncode == 0, f"scripts/demo exited {r.returncode}:\n{out}\n{r.stderr}"

        proof = PROOF.search(out)
        assert proof, f"no exactly-once line in:\n{out}"
        written, shipped = int(proof.group(1)), int(proof.group(2))
        assert written == shipped == 1000
        # The checksum printed after the writer ran is the one proven at the end.
        assert f"sha256 over the sorted records: {proof.group(3)}" in out

        steps = [int(m.group(1)) for m in STEP.finditer(out)]
        assert steps == [1, 2, 3, 4, 5, 6], out
        assert "lifeboat:state=dirty" in out and "lifeboat:state=flushed" in out
        assert "<buffer tag,time>" in out                 # the recovery config is printed
        assert re.search(r"^\s+vol-[0-9a-f]+: deleted$", out, re.M), out

        # Everything cleaned up and removed; nothing real touched.
        assert_nothing_left(tmp_path)
        assert list(tmp_path.glob("lifeboat-demo.*")) == []
        assert snapshot_real_paths() == before


def test_demo_cleans_up_after_ctrl_c(tmp_path: Path) -> None:
        """Ctrl-C while A's buffer is mounted and its watch runs: the terminal sends SIGINT to
        the whole foreground process group."""
        p = subprocess.Popen([str(DEMO)], env=demo_env(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        seen = ""
        try:
                # The step header is printed (and flushed) when the step starts, its line ends
                # when the step is done: read characters, not lines.
                while "[3/6]" not in seen:
                        ch = p.stdout.read(1)
                        assert ch, f"the demo ended before step 3:\n{seen}"
                        seen += ch
                workdirs = list(tmp_path.glob("lifeboat-demo.*"))
                assert len(workdirs) == 1
                assert any(lbtest.is_under(m["target"], workdirs[0]) for m in lbtest.mounts()), \
                        "A's buffer volume should be mounted in step 3"
                time.sleep(1.5)                 # A's fluentd and watch run, the notice is out
                os.killpg(p.pid, signal.SIGINT)
                rest, err = p.communicate(timeout=120)
        finally:
                if p.poll() is None:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
        assert p.returncode == 130, f"exit {p.returncode}:\n{seen}{rest}\n{err}"
        assert "interrupted" in err
        assert_nothing_left(tmp_path)
        assert list(tmp_path.glob("lifeboat-demo.*")) == []


def test_demo_refuses_when_not_root(tmp_path: Path) -> None:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(DEMO)],
                           env=demo_env(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2
        assert "needs root" in r.stderr
        assert list(tmp_path.glob("lifeboat-demo.*")) == []


def test_demo_refuses_without_loop_devices(tmp_path: Path) -> None:
        """A /dev without loop devices, as in an unprivileged container (a private mount
        namespace with an empty tmpfs on /dev)."""
        script = ("mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 "
                  "&& mknod -m 666 /dev/urandom c 1 9 && exec \"$0\"")
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(DEMO)],
                           env=demo_env(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
        assert "loop devices are not" in r.stderr
        assert list(tmp_path.glob("lifeboat-demo.*")) == []
