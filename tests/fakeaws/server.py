# SPDX-License-Identifier: MIT
"""The HTTP side: the IMDS port, the API port (the Query services and /_fake/) and the container
credentials port, the request log, and FakeAws, which builds the parts and starts and stops the
servers."""

from __future__ import annotations

import http.server
import socket
import threading
import time
import traceback
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from .autoscaling import AutoScaling, AutoScalingApi
from .base import Logger, Reply
from .cloudwatch import CloudWatchApi
from .config import Config
from .container import ContainerService
from .control import ControlApi
from .devices import Attacher
from .ec2 import Ec2Api
from .faults import FaultQueue, Throttle
from .imds import ImdsService
from .query import QueryEndpoint
from .sigv4 import SigV4Verifier
from .store import Store
from .sts import StsApi


class RequestLog:
        """Every IMDS and EC2 request, for tests and benchmarks. t is time.monotonic()
        (CLOCK_MONOTONIC, comparable with the test process's own clock)."""

        def __init__(self):
                self._lock = threading.Lock()
                self._entries: list[dict[str, Any]] = []

        def add(self, entry: dict[str, Any]) -> None:
                with self._lock:
                        self._entries.append(entry)

        def list(self) -> list[dict[str, Any]]:
                with self._lock:
                        return [dict(e) for e in self._entries]

        def reset(self) -> None:
                with self._lock:
                        self._entries.clear()


class FakeHTTPServer(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256        # benchmarks open many connections at once

        def __init__(self, address, handler, app: "FakeAws"):
                self.app = app
                super().__init__(address, handler)

        def handle_error(self, request: Any, client_address: Any) -> None:
                """A bug in the fake: into the log, and onto stderr (where the test fixture
                looks for tracebacks and fails the test)."""
                self.app.log("error", traceback.format_exc())
                super().handle_error(request, client_address)


class BaseHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 300           # idle keep-alive connections go away eventually
        server_name = "fake"
        service = "?"

        @property
        def app(self) -> "FakeAws":
                return self.server.app   # type: ignore[attr-defined]

        def version_string(self) -> str:
                return self.server_name

        def log_message(self, fmt: str, *args: Any) -> None:
                self.app.log(self.service, "%s %s" % (self.address_string(), fmt % args))

        def read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                        chunks = []
                        while True:
                                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                                if size == 0:
                                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                                pass
                                        return b"".join(chunks)
                                chunks.append(self.rfile.read(size))
                                self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length > 0 else b""

        def send(self, reply: Reply, truncate: bool = False) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for k, v in reply.headers.items():
                        self.send_header(k, v)
                if truncate:
                        self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                        self.wfile.write(reply.body[:len(reply.body) // 2] if truncate else reply.body)
                if truncate:
                        self.close_connection = True

        def drop(self) -> None:
                """Closes the connection without an answer."""
                self.close_connection = True
                try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                        pass

        def serve(self) -> None:
                method = self.command
                try:
                        self.dispatch(method)
                except (ConnectionError, TimeoutError) as e:
                        # The client gave up (its timeout during injected latency, say): normal.
                        self.close_connection = True
                        self.app.log(self.service, f"{method} {self.path}: client went away ({e!r})")

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = serve

        def dispatch(self, method: str) -> None:
                raise NotImplementedError

        def logged(self, method: str) -> dict[str, Any]:
                """A new entry of the request log; the service fills it in while it answers."""
                return {"service": self.service, "action": "", "method": method, "instance": None,
                        "status": 0, "t": time.monotonic()}

        def exchange(self, entry: dict[str, Any], answer: Callable[[], tuple[Reply | None, bool]]) -> None:
                """Sends answer()'s reply, truncated or not, or drops the connection (None). The
                request goes into the log in any case, before the client sees the answer: a test
                that reads the log right after its call finds the call there."""
                logged = False
                try:
                        reply, truncate = answer()
                        if reply is not None:
                                entry["status"] = reply.status
                        self.app.requests.add(entry)
                        logged = True
                        if reply is None:
                                return self.drop()
                        self.send(reply, truncate=truncate)
                finally:
                        if not logged:
                                self.app.requests.add(entry)


class ImdsHandler(BaseHandler):
        server_name = "EC2ws"
        service = "imds"

        def dispatch(self, method: str) -> None:
                entry = self.logged(method)
                self.read_body()
                self.exchange(entry, lambda: self.app.imds.answer(method, self.path, self.headers, entry))


class ContainerHandler(BaseHandler):
        """The container credentials endpoint (container.py), on its own port."""

        server_name = "ecs-agent"
        service = "container"

        def dispatch(self, method: str) -> None:
                entry = self.logged(method)
                self.read_body()
                path = urllib.parse.urlsplit(self.path).path
                self.exchange(entry, lambda: self.app.container.answer(method, path, self.headers, entry))


class ApiHandler(BaseHandler):
        """The API port: the control API under /_fake/, every other path a Query request."""

        server_name = "AmazonEC2"
        service = "ec2"

        def dispatch(self, method: str) -> None:
                app = self.app
                split = urllib.parse.urlsplit(self.path)
                body = self.read_body()
                if split.path.startswith("/_fake/") or split.path == "/_fake":
                        return self.send(app.control.answer(method, split.path, body))
                entry = self.logged(method)
                try:
                        self.exchange(entry, lambda: app.query.answer(method, split, self.headers, body, entry))
                finally:
                        app.log(entry["service"], f"{entry['action'] or '-'} {entry['instance']} -> {entry['status']}"
                                + (f" (fault {entry['fault']})" if "fault" in entry else ""))



class FakeAws:
        """The whole fake: its parts, an IMDS server, an API server and a container credentials
        server on 127.0.0.1."""

        def __init__(self, state_dir: Path, region: str):
                self.state_dir = state_dir
                self.region = region
                state_dir.mkdir(parents=True, exist_ok=True)
                self.log = Logger(state_dir / "fakeaws.log")
                self.stopping = threading.Event()
                self.config = Config()
                self.faults = FaultQueue()
                self.throttle = Throttle()
                self.requests = RequestLog()
                self.attacher = Attacher(self.log)
                self.store = Store(state_dir, region, self.config, self.attacher, self.log, self.stopping)
                self.verifier = SigV4Verifier(self.store.credentials.get, region)
                self.ec2 = Ec2Api(self.store)
                self.cloudwatch = CloudWatchApi()
                self.autoscaling = AutoScaling(self.store, self.log, self.stopping)
                self.sts = StsApi(self.store, self.config)
                # Another Query service is one more module, and one more entry here.
                self.query = QueryEndpoint([self.ec2, self.cloudwatch, AutoScalingApi(self.autoscaling), self.sts],
                                           self.verifier, self.faults, self.config, self.throttle)
                self.container = ContainerService(self.store, self.config, self.faults)
                self.imds = ImdsService(self.store, self.config, self.faults, self.stopping)
                self.control = ControlApi(self)
                self.imds_port = 0
                self._imds_server: FakeHTTPServer | None = None
                self._ec2_server: FakeHTTPServer | None = None
                self._container_server: FakeHTTPServer | None = None
                self._imds_lock = threading.Lock()

        def _serve(self, server: FakeHTTPServer, name: str) -> None:
                threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                 name=name, daemon=True).start()

        def open_imds(self) -> None:
                with self._imds_lock:
                        if self._imds_server is None:
                                self._imds_server = FakeHTTPServer(("127.0.0.1", self.imds_port), ImdsHandler, self)
                                self.imds_port = self._imds_server.server_address[1]
                                self._serve(self._imds_server, "imds")
                                self.log("imds", f"listening on {self.imds_port}")

        def close_imds(self) -> None:
                with self._imds_lock:
                        if self._imds_server is not None:
                                self._imds_server.shutdown()
                                self._imds_server.server_close()
                                self._imds_server = None
                                self.log("imds", "listener closed")

        def start(self) -> None:
                self.open_imds()
                self._ec2_server = FakeHTTPServer(("127.0.0.1", 0), ApiHandler, self)
                self._serve(self._ec2_server, "ec2")
                self.log("ec2", f"listening on {self._ec2_server.server_address[1]}")
                self._container_server = FakeHTTPServer(("127.0.0.1", 0), ContainerHandler, self)
                self._serve(self._container_server, "container")
                self.log("container", f"listening on {self.container_port}")

        @property
        def ec2_port(self) -> int:
                assert self._ec2_server
                return self._ec2_server.server_address[1]

        @property
        def container_port(self) -> int:
                assert self._container_server
                return self._container_server.server_address[1]

        def update_config(self, changes: dict[str, Any]) -> None:
                self.config.update(changes)
                if "credential_ttl_s" in changes:
                        self.store.forget_current_credentials()
                if "snapshot_delay_ms" in changes:
                        self.store.reschedule_snapshots()
                if "imds_mode" in changes:
                        if self.config.imds_mode == "down":
                                self.close_imds()
                        else:
                                self.open_imds()

        def stop(self) -> None:
                self.stopping.set()
                self.close_imds()
                for server in (self._ec2_server, self._container_server):
                        if server:
                                server.shutdown()
                                server.server_close()
                self.store.teardown_all()
                self.attacher.teardown_all()
                self.log("main", "stopped")
                self.log.close()
