# SPDX-License-Identifier: MIT
"""Operating lifeboat like the agents beside it: journald priorities when stderr is the journal,
log lines no value can split, sd_notify READY/STATUS/WATCHDOG/STOPPING from watch against a
stand-in NOTIFY_SOCKET, one JSON object with exit_code and error from every --json command
(also for exit 2 and 3), `lifeboat help`, and systemd time spans in the settings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import lbtest
from lbtest import run_lifeboat

JSON_COMMANDS = (["boot"], ["status"], ["reap", "--dry-run"])


def run_with_stderr_fd(env: dict[str, str], args: list[str], journal: str | None) -> tuple[int, str]:
        """Runs lifeboat with stderr on a pipe; JOURNAL_STREAM names that pipe ("match"), another
        file ("other"), or is unset (None)."""
        r, w = os.pipe()
        st = os.fstat(w)
        env = dict(env)
        if journal == "match":
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        elif journal == "other":
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
        p = subprocess.Popen([lbtest.lifeboat_bin(), *args], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=w)
        os.close(w)
        with os.fdopen(r, errors="replace") as f:
                text = f.read()
        return p.wait(timeout=60), text


def test_journal_gets_priorities_and_no_program_name(fake):
        inst = fake.add_instance()
        env = fake.env_for(inst)
        env["LIFEBOAT_GROUP"] = "bad group"
        env["LIFEBOAT_NO_SUCH_SETTING"] = "1"   # a warning
        rc, text = run_with_stderr_fd(env, ["status"], "match")
        assert rc == 2
        lines = text.splitlines()
        assert any(l.startswith("<3>") and "LIFEBOAT_GROUP" in l for l in lines), text
        assert any(l.startswith("<4>") and "LIFEBOAT_NO_SUCH_SETTING" in l for l in lines), text
        assert all(l[:1] == "<" and l[2:3] == ">" and not l[3:].startswith("lifeboat:") for l in lines), text

        # JOURNAL_STREAM for another file (stderr redirected since): plain lines.
        for journal in ("other", None):
                rc, text = run_with_stderr_fd(env, ["status"], journal)
                assert rc == 2
                assert "lifeboat: error: " in text and "lifeboat: warning: " in text, text
                assert "<3>" not in text


def test_info_lines_reach_the_journal_at_info(fake):
        inst = fake.add_instance()
        rc, text = run_with_stderr_fd(fake.env_for(inst), ["--verbose", "status"], "match")
        assert rc == 0, text
        assert any(l.startswith("<7>") for l in text.splitlines()), text   # --verbose: debug


def test_a_value_cannot_split_or_forge_a_log_line(fake):
        inst = fake.add_instance()
        env = fake.env_for(inst)
        env["LIFEBOAT_GROUP"] = "x\nlifeboat: forged line\x1b[2J"
        rc, text = run_with_stderr_fd(env, ["status"], None)
        assert rc == 2
        lines = text.splitlines()
        assert not any(l.startswith("lifeboat: forged") for l in lines), text
        assert len([l for l in lines if "forged line" in l]) == 1, text
        assert "\x1b" not in text


class NotifySocket:
        """A stand-in for systemd's notify socket: an abstract datagram socket."""

        def __init__(self) -> None:
                self.name = f"lifeboat-test-notify-{os.getpid()}-{time.monotonic_ns()}"
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.bind("\0" + self.name)
                self.sock.settimeout(0.2)
                self.messages: list[str] = []

        def collect(self, until, timeout: float) -> list[str]:
                end = time.monotonic() + timeout
                while time.monotonic() < end and not until(self.messages):
                        try:
                                self.messages.append(self.sock.recv(4096).decode())
                        except socket.timeout:
                                pass
                return self.messages

        def close(self) -> None:
                self.sock.close()


@pytest.fixture
def notify():
        s = NotifySocket()
        yield s
        s.close()


def start_watch(fake, notify: NotifySocket, tmp_path: Path, **extra: str) -> subprocess.Popen:
        inst = fake.add_instance()
        env = fake.env_for(inst)
        env.update({"NOTIFY_SOCKET": "@" + notify.name, "LIFEBOAT_POLL_INTERVAL": "200ms",
                    "LIFEBOAT_FLUENTD_RPC": "", **extra})
        log = open(tmp_path / "watch.log", "wb")
        return subprocess.Popen([lbtest.lifeboat_bin(), "watch"], env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)


def stop(p: subprocess.Popen) -> int:
        p.send_signal(signal.SIGTERM)
        try:
                return p.wait(timeout=30)
        except subprocess.TimeoutExpired:
                p.kill()
                return p.wait()


def test_watch_notifies_ready_status_watchdog_and_stopping(fake, notify, tmp_path):
        p = start_watch(fake, notify, tmp_path, WATCHDOG_USEC="1000000")   # 1 s: a ping every 0.5 s at least
        try:
                msgs = notify.collect(lambda m: sum("WATCHDOG=1" in x for x in m) >= 4, timeout=20)
                text = "\n".join(msgs)
                assert "READY=1" in msgs[0], msgs
                assert "STATUS=watching; no own buffer volume (recovery only)" in text, msgs
                assert sum("WATCHDOG=1" in x for x in msgs) >= 4, msgs
                assert sum("READY=1" in x for x in msgs) == 1, "READY once"
        finally:
                rc = stop(p)
        msgs = notify.collect(lambda m: any("STOPPING=1" in x for x in m), timeout=5)
        assert any("STOPPING=1" in x for x in msgs), msgs
        assert rc == 0, (tmp_path / "watch.log").read_text()


def test_watch_pings_nobody_else_s_watchdog(fake, notify, tmp_path):
        """WATCHDOG_PID names another process: the watchdog is not ours to feed."""
        p = start_watch(fake, notify, tmp_path, WATCHDOG_USEC="1000000", WATCHDOG_PID="1")
        try:
                msgs = notify.collect(lambda m: False, timeout=3)
                assert any("READY=1" in x for x in msgs), msgs
                assert not any("WATCHDOG=1" in x for x in msgs), msgs
        finally:
                stop(p)


def test_no_notify_socket_is_no_error(fake, tmp_path):
        inst = fake.add_instance()
        env = fake.env_for(inst)
        env["LIFEBOAT_FLUENTD_RPC"] = ""
        p = run_lifeboat(env, "watch", "--once")
        assert p.returncode == 0, p.stderr


def last_error_line(stderr: str) -> str:
        errors = [l.removeprefix("lifeboat: error: ") for l in stderr.splitlines() if l.startswith("lifeboat: error: ")]
        assert errors, stderr
        return errors[-1]


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=lambda c: c[0])
def test_json_contract_on_configuration_error(fake, command):
        inst = fake.add_instance()
        env = fake.env_for(inst)
        env["LIFEBOAT_POLL_INTERVAL"] = "soon"
        p = run_lifeboat(env, *command, "--json")
        assert p.returncode == 2
        doc = json.loads(p.stdout)                  # exactly one object
        assert doc["exit_code"] == 2
        assert doc["error"] == last_error_line(p.stderr) and "LIFEBOAT_POLL_INTERVAL" in doc["error"]

        p = run_lifeboat(fake.env_for(inst), *command, "--json", "--no-such-option")
        assert p.returncode == 2
        doc = json.loads(p.stdout)
        assert doc["exit_code"] == 2 and "--no-such-option" in doc["error"]


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=lambda c: c[0])
def test_json_contract_when_aws_is_unreachable(fake, command):
        inst = fake.add_instance()
        env = fake.env_for(inst)
        with socket.socket() as s:          # a port that refuses connections
                s.bind(("127.0.0.1", 0))
                closed = f"http://127.0.0.1:{s.getsockname()[1]}"
        # IMDS and EC2 both unreachable (reap needs no IMDS with a region and keys).
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = closed
        env["AWS_ENDPOINT_URL_EC2"] = closed
        env["LIFEBOAT_IMDS_TIMEOUT"] = "200ms"
        env["LIFEBOAT_EC2_TIMEOUT"] = "200ms"
        p = run_lifeboat(env, *command, "--json")
        assert p.returncode == 3, p.stderr
        doc = json.loads(p.stdout)
        assert doc["exit_code"] == 3
        assert doc["error"] == last_error_line(p.stderr) and doc["error"]
        assert "see the log" not in doc["error"]
        if command[0] == "boot":
                assert doc["instance_id"] is None, "no instance id pretending to be data"


def test_json_success_has_exit_code_and_null_error(fake):
        inst = fake.add_instance()
        p = run_lifeboat(fake.env_for(inst), "status", "--json")
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["exit_code"] == 0 and doc["error"] is None


def test_help(fake):
        env = fake.env_for(fake.add_instance())
        p = run_lifeboat(env, "--help")
        assert p.returncode == 0 and "--version" in p.stdout and "help [COMMAND]" in p.stdout
        for command in ("boot", "status", "reap", "watch"):
                a = run_lifeboat(env, "help", command)
                b = run_lifeboat(env, command, "--help")
                assert a.returncode == b.returncode == 0 and a.stdout == b.stdout and f"lifeboat {command}" in a.stdout
                assert "Exit codes:" in a.stdout, command
        p = run_lifeboat(env, "help", "nope")
        assert p.returncode == 2 and "unknown command 'nope'" in p.stderr
        p = run_lifeboat(env, "status", "--help")
        assert "3 AWS unreachable" in p.stdout


def test_settings_take_systemd_time_spans(fake, tmp_path):
        inst = fake.add_instance()
        env = fake.env_for(inst)
        conf = tmp_path / "lifeboat.conf"
        conf.write_text("LIFEBOAT_BOOT_TIMEOUT=1min 30s\nLIFEBOAT_SETTLE=1.5s\nLIFEBOAT_POLL_INTERVAL=2 s\n")
        env["LIFEBOAT_CONFIG"] = str(conf)
        p = run_lifeboat(env, "--verbose", "status")
        assert p.returncode == 0, p.stderr
        assert "LIFEBOAT_BOOT_TIMEOUT=90s" in p.stderr and "LIFEBOAT_SETTLE=1500ms" in p.stderr, p.stderr
        conf.write_text("LIFEBOAT_SETTLE=5secs\n")
        p = run_lifeboat(env, "status")
        assert p.returncode == 2 and "LIFEBOAT_SETTLE" in p.stderr
