# SPDX-License-Identifier: MIT
"""Processes: waiting for a condition or a ready file, stopping a process, and the
processes (and fakes) of a demo or bench run, recorded in WORKDIR/pids so that the
safety net (stop_recorded) finds them even after the driver was killed."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .base import PYTHON, Failure, fail
from .system import clean_dir, mount_namespace, mounts

if TYPE_CHECKING:
        from .aws import FakeAWS


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 10, interval: float = 0.05) -> Any:
        """predicate()'s first true value; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
                value = predicate()
                if value:
                        return value
                if time.monotonic() > deadline:
                        fail(f"timed out after {timeout}s waiting for {what}")
                time.sleep(interval)


def stop_process(p: subprocess.Popen, grace: float, sig: int = signal.SIGTERM) -> bool:
        """Sends sig, then SIGKILL after grace seconds. True when it stopped in time."""
        if p.poll() is not None:
                return True
        p.send_signal(sig)
        try:
                p.wait(grace)
                return True
        except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return False


def wait_ready(p: subprocess.Popen, ready: Path, what: str, output: Callable[[], str],
               timeout: float = 15) -> str:
        """The content of the ready file a starting process writes (atomically) when it
        serves. Raises Failure, with output(), when it exits or does not get there in time."""
        deadline = time.monotonic() + timeout
        while not ready.exists():
                if p.poll() is not None:
                        raise Failure(f"{what} exited {p.returncode} before it was ready:\n{output()}")
                if time.monotonic() > deadline:
                        stop_process(p, 5)
                        raise Failure(f"{what} did not start within {timeout:g} s:\n{output()}")
                time.sleep(0.02)
        return ready.read_text()


_HOLDER = r"""
import sys, time
held = open(sys.argv[1], "rb") if len(sys.argv) > 1 else None
print("ready", flush=True)
sys.stdin.readline()
if held is not None:
        held.close()
print("closed", flush=True)
while True:
        time.sleep(3600)
"""


class NamespaceHolder:
        """A process in a mount namespace of its own with private propagation, made by
        `unshare --mount --propagation private`: what Docker's and containerd's rprivate bind
        mounts give a container. It holds a copy of every mount that existed when it started
        (and keeps the devices busy after the host unmounts them); with open_file it also
        keeps that file open in its namespace until close_file(). Its cwd is "/".

        Register it where a fixture stops it (`fake.children.append(holder.proc)`), so that it
        never outlives a failing test."""

        def __init__(self, open_file: Path | str | None = None, timeout: float = 10):
                argv = ["unshare", "--mount", "--propagation", "private", PYTHON, "-c", _HOLDER]
                if open_file is not None:
                        argv.append(str(open_file))
                self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True, cwd="/")
                self.pid = self.proc.pid
                self._expect("ready", timeout)

        def _expect(self, word: str, timeout: float) -> None:
                assert self.proc.stdout is not None
                ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
                line = self.proc.stdout.readline() if ready else ""
                if line.strip() != word:
                        stop_process(self.proc, 2)
                        err = self.proc.stderr.read() if self.proc.stderr else ""
                        raise Failure(f"namespace holder did not say {word!r} (got {line!r}): {err.strip()}")

        def namespace(self) -> int:
                return mount_namespace(self.pid)

        def mounts(self) -> list[dict[str, str]]:
                """Its mount table (mountinfo of its namespace)."""
                return mounts(self.pid)

        def close_file(self, timeout: float = 10) -> None:
                """Closes the file it keeps open; the process itself goes on."""
                assert self.proc.stdin is not None
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
                self._expect("closed", timeout)

        def alive(self) -> bool:
                return self.proc.poll() is None

        def stop(self) -> None:
                stop_process(self.proc, 5)


def log_tail(path: Path, lines: int = 15) -> str:
        if not path.exists():
                return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Processes:
        """The processes and fakes of one run of a driver in its work directory: each one's
        output in WORKDIR/logs/NAME.log, each pid in WORKDIR/pids."""

        def __init__(self, workdir: Path):
                self.workdir = workdir
                self.logs = workdir / "logs"
                self.logs.mkdir(exist_ok=True)
                self.pids_file = workdir / "pids"
                self.running: dict[str, subprocess.Popen] = {}
                self.fakes: list[FakeAWS] = []

        def record(self, pid: int, name: str) -> None:
                with open(self.pids_file, "a") as f:
                        f.write(f"{pid} {name}\n")

        def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
                log = open(self.logs / f"{name}.log", "ab")
                p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                log.close()
                self.record(p.pid, name)
                self.running[name] = p
                return p

        def log_tail(self, name: str, lines: int = 15) -> str:
                return log_tail(self.logs / f"{name}.log", lines)

        def check_alive(self, name: str) -> None:
                """Fails when a process that should run has exited."""
                p = self.running.get(name)
                if p is not None and p.poll() is not None:
                        raise Failure(f"{name} exited with {p.returncode}:\n{self.log_tail(name)}")

        def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = 10) -> int | None:
                p = self.running.pop(name, None)
                if p is None:
                        return None
                stop_process(p, grace, sig)
                return p.returncode

        def start_fake(self, workdir: Path, name: str = "fakeaws") -> "FakeAWS":
                from .aws import FakeAWS
                fake = FakeAWS.start(workdir)
                self.record(fake.pid, name)
                self.fakes.append(fake)
                return fake

        def stop_fake(self, fake: "FakeAWS") -> list[str]:
                self.fakes.remove(fake)
                return fake.shutdown()

        def close(self) -> list[str]:
                """Stops everything (last started, first stopped: watch before the fluentd it
                talks to), then the fakes; unmounts and detaches what is left. Returns problems."""
                for name in reversed(list(self.running)):
                        self.stop(name, grace=5)
                problems = []
                for fake in list(self.fakes):
                        problems += self.stop_fake(fake)
                return problems + clean_dir(self.workdir)


def _mentions(pid: int, needle: bytes) -> bool:
        for what in ("cmdline", "environ"):
                try:
                        if needle in Path(f"/proc/{pid}/{what}").read_bytes():
                                return True
                except OSError:
                        pass
        return False


def stop_recorded(workdir: Path) -> list[int]:
        """The safety net after a driver: stops the processes recorded in WORKDIR/pids that
        still run (each pid only if it still refers to the work dir: SIGTERM, SIGKILL after 5 s).
        Returns the pids still alive."""
        needle = str(workdir.resolve()).encode()
        pids = []
        pids_file = workdir / "pids"
        if pids_file.exists():
                for line in pids_file.read_text().splitlines():
                        if line.split() and line.split()[0].isdigit():
                                pids.append(int(line.split()[0]))
        alive = [p for p in pids if p != os.getpid() and _mentions(p, needle)]
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
                for p in alive:
                        try:
                                os.kill(p, sig)
                        except ProcessLookupError:
                                pass
                deadline = time.monotonic() + wait
                while alive and time.monotonic() < deadline:
                        alive = [p for p in alive if Path(f"/proc/{p}").exists() and _mentions(p, needle)]
                        time.sleep(0.05)
        return alive
