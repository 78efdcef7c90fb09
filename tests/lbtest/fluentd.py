# SPDX-License-Identifier: MIT
"""fluentd's side: chunk files and their records (written by tests/fakefluentd.py write),
the stand-in fluentd itself (FakeFluentd), and a bare RPC endpoint that only notes what
it was asked (FluentdRpc)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from .aws import http
from .base import FAKEFLUENTD, PYTHON, Failure
from .processes import stop_process, wait_ready
from .system import run

# lifeboat's default LIFEBOAT_CHUNK_PATTERN: what it counts as a chunk file
CHUNK_PATTERN = re.compile(r"\.(b|q)[0-9a-f]+\.(log|buf)$")


# --------------------------------------------------------------------------
# chunk files and records
# --------------------------------------------------------------------------

def record(n: int) -> str:
        """Record number n, as fakefluentd.py write writes it."""
        return "record %06d %s" % (n, hashlib.sha1(b"%d" % n).hexdigest())


def write_chunks(d: Path, records: int, start: int = 1, per_chunk: int = 100, queued: bool = False) -> list[Path]:
        """Records start.. in chunk files (and their .meta) in d, like fluentd's file buffer."""
        argv = [PYTHON, str(FAKEFLUENTD), "write", "--dir", str(d), "--records", str(records),
                "--start", str(start), "--per-chunk", str(per_chunk)] + (["--queued"] if queued else [])
        return [Path(p) for p in run(argv).stdout.split()]


def chunk_files(d: Path) -> list[Path]:
        """Chunk files below d, as lifeboat's scan counts them."""
        found = []
        for root, _, names in os.walk(d):
                found += [Path(root) / n for n in names if CHUNK_PATTERN.search(n)]
        return sorted(found)


def record_lines(files: list[Path]) -> list[str]:
        lines = []
        for f in files:
                lines += [ln for ln in f.read_text().split("\n") if ln]
        return lines


def digest(lines: list[str]) -> str:
        """sha256 over the sorted records: the same for the same records in any order."""
        return hashlib.sha256("".join(ln + "\n" for ln in sorted(lines)).encode()).hexdigest()


# --------------------------------------------------------------------------
# the stand-in fluentd
# --------------------------------------------------------------------------

class FakeFluentd:
        """A running tests/fakefluentd.py: its live output's buffer in buffer_dir, recovery
        snippets from conf_dir, shipping to out, its events in log. spawn starts the argv with
        its output going to output (default: a plain child process, its output in LOG.out)."""

        def __init__(self, buffer_dir: Path, conf_dir: Path, out: Path, log: Path, ready: Path, *extra: str,
                     spawn: Callable[[list[str]], subprocess.Popen] | None = None, output: Path | None = None):
                self.out = out
                self.log = log
                argv = [PYTHON, str(FAKEFLUENTD), "--port", "0", "--ready-file", str(ready),
                        "--buffer-dir", str(buffer_dir), "--conf-dir", str(conf_dir), "--out", str(out),
                        "--log", str(log), *extra]
                output = output or log.with_name(log.name + ".out")
                if spawn is None:
                        with open(output, "wb") as f:
                                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                                                             stderr=subprocess.STDOUT)
                else:
                        self.proc = spawn(argv)
                self.port = int(wait_ready(self.proc, ready, "fakefluentd",
                                           lambda: output.read_text(errors="replace") if output.exists() else ""))
                self.url = f"http://127.0.0.1:{self.port}"

        def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
                """(HTTP status, JSON answer) of an RPC or /_fake/ call."""
                data = json.dumps(body).encode() if body is not None else None
                a = http(method, self.url + path, data, {"Content-Type": "application/json"} if data else None,
                         timeout=5)
                return a.status, json.loads(a.body)

        def checked(self, method: str, path: str, body: Any = None) -> Any:
                code, answer = self.call(method, path, body)
                if code != 200:
                        raise Failure(f"fakefluentd {method} {path}: {code} {answer}")
                return answer

        def status(self) -> dict[str, Any]:
                return self.checked("GET", "/_fake/status")

        def mode(self, **kw: Any) -> dict[str, Any]:
                """stuck=bool, flush_delay=seconds."""
                return self.checked("POST", "/_fake/mode", kw)

        def shipped(self) -> list[str]:
                return self.out.read_text().splitlines() if self.out.exists() else []

        def stop(self, sig: int = signal.SIGTERM, grace: float = 5) -> int | None:
                stop_process(self.proc, grace, sig)
                return self.proc.returncode


class FluentdRpc:
        """A fluentd RPC endpoint that answers {"ok":true} to every GET and notes the calls
        (paths, in order) and when the first flush request came (time.monotonic())."""

        def __init__(self):
                self.calls: list[str] = []
                self._lock = threading.Lock()
                self._flushed = threading.Event()
                self._t: float | None = None
                rpc = self

                class Handler(BaseHTTPRequestHandler):
                        protocol_version = "HTTP/1.1"

                        def log_message(self, fmt: str, *a: Any) -> None:
                                pass

                        def do_GET(self) -> None:
                                rpc._note(self.path)
                                body = b'{"ok":true}'
                                self.send_response(200)
                                self.send_header("Content-Type", "application/json")
                                self.send_header("Content-Length", str(len(body)))
                                self.end_headers()
                                self.wfile.write(body)

                self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
                self.server.daemon_threads = True
                self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
                threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                 daemon=True).start()

        def _note(self, path: str) -> None:
                with self._lock:
                        self.calls.append(path)
                        if path.startswith("/api/plugins.flushBuffers") and self._t is None:
                                self._t = time.monotonic()
                                self._flushed.set()

        def reset(self) -> None:
                """Forgets the flush request seen (not the calls)."""
                with self._lock:
                        self._t = None
                        self._flushed.clear()

        def wait_flush(self, timeout: float) -> float | None:
                """When the first flush request (since reset) came; None if none within timeout."""
                self._flushed.wait(timeout)
                with self._lock:
                        return self._t

        def close(self) -> None:
                self.server.shutdown()
                self.server.server_close()

        def __enter__(self) -> "FluentdRpc":
                return self

        def __exit__(self, *exc: Any) -> None:
                self.close()
