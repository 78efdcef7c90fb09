#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A stand-in for fluentd, for lifeboat's integration tests and the demo.

It plays the parts of fluentd that lifeboat relies on (standard library only):

  * the RPC endpoint (<system> rpc_endpoint): GET /api/plugins.flushBuffers
    and GET /api/config.reload answer {"ok":true} at once, before the work is
    done, like fluentd;
  * a live output with a file buffer (--buffer-dir): its chunks are shipped
    only when a flush is requested (RPC or SIGUSR1), as with a lazy live
    output;
  * recovery outputs: the `path` of every <buffer> section in the *.conf
    snippets of --conf-dir, read at start and on config.reload (SIGHUP) only.
    Their chunks ship by themselves, every --interval seconds, like an output
    with flush_mode interval and flush_interval 1s resuming chunks;
  * "S3": shipping a chunk appends its records (one per line) to --out,
    fsyncs, and only then deletes the chunk file and its .meta. Every chunk
    ships once (after --flush-delay seconds), or never in --stuck mode.

Like a single fluentd worker, a buffer `path` that is a directory resumes
<path>/buffer.(b|q)<hex>.log (not workerN/ subdirectories); a path with a '*'
(buffer.*.log) is a pattern. A missing buffer directory is created at (re)load,
as fluentd does. A snippet that does not parse is refused: at start the fake
exits 1, on reload it keeps the previous configuration (see /_fake/status).

Chunk files here hold plain text records, one per line (real ones are
msgpack); `write` produces them.

Usage:
  fakefluentd.py [serve] --port 0 --ready-file F --buffer-dir DIR --conf-dir DIR
                 --out FILE [--flush-delay S] [--stuck] [--log FILE]
                 [--interval S] [--reload-delay S]
  fakefluentd.py write --dir DIR --records N [--start K] [--per-chunk M]
                 [--queued]

The ready file receives the listening port ("24444\\n"), written atomically
once the server accepts connections. Control endpoints:
  POST /_fake/mode    {"stuck": bool, "flush_delay": seconds}  (either key)
  GET  /_fake/status  counters, loaded recovery paths, pending chunks
Signals: SIGUSR1 flushes, SIGHUP reloads, SIGTERM/SIGINT stop (recovery
outputs flush at shutdown unless stuck, as with flush_at_shutdown true).
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a file buffer resumes from a directory path: buffer.*.log with a state
# letter and the hex chunk id (fluentd's FileChunk.assume_chunk_state).
CHUNK_NAME = re.compile(r"^buffer\.(b|q)[0-9a-f]+\.log$")
WORKER_DIR = re.compile(r"^worker[0-9]+$")


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


# ---- configuration snippets ----------------------------------------------

class ConfigError(Exception):
    pass


def strip_comment(line):
    """Drops a comment: a '#' at the start or after blank, outside quotes."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def parse_snippet(text, name):
    """Returns the buffer paths of a snippet; raises ConfigError when its
    sections do not nest or a placeholder was left unrendered."""
    paths = []
    stack = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw).strip()
        if not line:
            continue
        if "{{" in line or "}}" in line:
            raise ConfigError("%s:%d: unrendered placeholder: %s" % (name, lineno, line))
        m = re.fullmatch(r"</\s*([A-Za-z_][\w.-]*)\s*>", line)
        if m:
            if not stack or stack[-1] != m.group(1):
                raise ConfigError("%s:%d: unexpected </%s>" % (name, lineno, m.group(1)))
            stack.pop()
            continue
        m = re.fullmatch(r"<\s*([A-Za-z_][\w.-]*)(\s+[^<>]*)?>", line)
        if m:
            stack.append(m.group(1))
            continue
        if line.startswith("<") or line.endswith(">"):
            raise ConfigError("%s:%d: malformed section: %s" % (name, lineno, line))
        if stack and stack[-1] == "buffer":
            key, _, value = line.partition(" ")
            value = value.strip()
            if key == "path":
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                    value = value[1:-1]
                if not value.startswith("/"):
                    raise ConfigError("%s:%d: buffer path must be absolute: %s" % (name, lineno, value))
                paths.append(value)
    if stack:
        raise ConfigError("%s: <%s> is not closed" % (name, stack[-1]))
    return paths


def load_conf_dir(conf_dir):
    paths = []
    if not conf_dir or not os.path.isdir(conf_dir):
        return paths
    for name in sorted(os.listdir(conf_dir)):
        full = os.path.join(conf_dir, name)
        if not name.endswith(".conf") or not os.path.isfile(full):
            continue
        with open(full, encoding="utf-8", errors="replace") as f:
            paths.extend(parse_snippet(f.read(), name))
    return paths


def chunk_files(path):
    """The chunk files one file buffer resumes (a single worker)."""
    if "*" in path:
        directory, pattern = os.path.split(path)
        rx = re.compile("^" + re.escape(pattern).replace(r"\*", "(b|q)[0-9a-f]+") + "$")
    else:
        directory, rx = path, CHUNK_NAME
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in sorted(names):
        full = os.path.join(directory, name)
        if rx.match(name) and os.path.isfile(full) and not os.path.islink(full):
            out.append(full)
    return out


def buffer_dir_of(path):
    return os.path.dirname(path) if "*" in path else path


# ---- the fake --------------------------------------------------------------

class FakeFluentd:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stuck = args.stuck
        self.flush_delay = args.flush_delay
        self.recovery_paths = []
        self.pending = {}          # chunk path -> (due, source)
        self.reload_at = None
        self.config_error = None
        self.counters = {"flush_requests": 0, "reloads": 0, "shipped_chunks": 0,
                         "shipped_records": 0}
        self.stop = threading.Event()
        self.logf = open(args.log, "a", buffering=1) if args.log else sys.stderr

    def log(self, fmt, *a):
        msg = fmt % a if a else fmt
        self.logf.write("%s fakefluentd[%d]: %s\n" % (time.strftime("%H:%M:%S"), os.getpid(), msg))
        self.logf.flush()

    # configuration

    def load_config(self, initial):
        try:
            paths = load_conf_dir(self.args.conf_dir)
        except (ConfigError, OSError) as e:
            self.config_error = str(e)
            self.log("config error: %s", e)
            if initial:
                raise
            self.log("keeping the previous configuration")
            return
        for p in paths:
            # fluentd creates a missing buffer directory (on whatever disk it is).
            d = buffer_dir_of(p)
            if not os.path.isdir(d):
                self.log("creating buffer directory %s", d)
                os.makedirs(d, exist_ok=True)
        self.config_error = None
        self.recovery_paths = paths
        sources = set(paths) | {self.args.buffer_dir}
        self.pending = {c: v for c, v in self.pending.items() if v[1] in sources}
        self.log("%s: recovery buffer paths %s", "started" if initial else "reloaded", paths)
        self.schedule_recovery()

    # scheduling (callers hold self.lock)

    def schedule(self, source):
        due = time.monotonic() + self.flush_delay
        for c in chunk_files(source):
            if c not in self.pending:
                self.pending[c] = (due, source)

    def schedule_recovery(self):
        for p in self.recovery_paths:
            self.schedule(p)

    def request_flush(self):
        with self.lock:
            self.counters["flush_requests"] += 1
            self.log("flush requested (stuck=%s, delay=%ss)", self.stuck, self.flush_delay)
            if self.args.buffer_dir:
                self.schedule(self.args.buffer_dir)
            self.schedule_recovery()

    def request_reload(self):
        with self.lock:
            self.counters["reloads"] += 1
            self.reload_at = time.monotonic() + self.args.reload_delay

    # shipping

    def ship(self, chunk):
        """Appends the chunk's records to the out file, then deletes it and its .meta."""
        try:
            with open(chunk, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return True
        except OSError as e:
            self.log("cannot read %s: %s (retrying)", chunk, e)
            return False
        lines = [ln for ln in data.decode("utf-8", errors="replace").split("\n") if ln]
        with open(self.args.out, "a", encoding="utf-8") as out:
            for ln in lines:
                out.write(ln + "\n")
            out.flush()
            os.fsync(out.fileno())
        for victim in (chunk, chunk + ".meta"):
            try:
                os.unlink(victim)
            except FileNotFoundError:
                pass
        self.counters["shipped_chunks"] += 1
        self.counters["shipped_records"] += len(lines)
        self.log("shipped %s (%d records)", chunk, len(lines))
        return True

    def tick(self):
        now = time.monotonic()
        with self.lock:
            if self.reload_at is not None and now >= self.reload_at:
                self.reload_at = None
                self.load_config(initial=False)
            if self.stuck:
                return
            for chunk, (due, _) in sorted(self.pending.items(), key=lambda kv: kv[1][0]):
                if due <= now and self.ship(chunk):
                    del self.pending[chunk]

    def worker(self):
        next_scan = time.monotonic() + self.args.interval
        while not self.stop.wait(0.05):
            try:
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + self.args.interval
                    with self.lock:
                        self.schedule_recovery()
                self.tick()
            except Exception as e:  # keep serving; the log tells
                self.log("worker error: %r", e)

    def shutdown_flush(self):
        """flush_at_shutdown true: recovery outputs ship what they hold."""
        with self.lock:
            if self.stuck:
                return
            for p in self.recovery_paths:
                for c in chunk_files(p):
                    self.ship(c)
                    self.pending.pop(c, None)

    def status(self):
        with self.lock:
            return dict(self.counters, stuck=self.stuck, flush_delay=self.flush_delay,
                        recovery_paths=list(self.recovery_paths), pending=sorted(self.pending),
                        config_error=self.config_error, pid=os.getpid())

    def set_mode(self, body):
        with self.lock:
            if "stuck" in body:
                if not isinstance(body["stuck"], bool):
                    raise ValueError("stuck must be a boolean")
                self.stuck = body["stuck"]
            if "flush_delay" in body:
                d = body["flush_delay"]
                if isinstance(d, bool) or not isinstance(d, (int, float)) or d < 0:
                    raise ValueError("flush_delay must be a number >= 0")
                self.flush_delay = float(d)
            self.log("mode: stuck=%s flush_delay=%s", self.stuck, self.flush_delay)
            return {"ok": True, "stuck": self.stuck, "flush_delay": self.flush_delay}


def make_handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            fake.log("http: " + fmt, *a)

        def answer(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/api/plugins.flushBuffers":
                fake.request_flush()
                self.answer(200, {"ok": True})
            elif path == "/api/config.reload":
                fake.request_reload()
                self.answer(200, {"ok": True})
            elif path == "/_fake/status":
                self.answer(200, fake.status())
            else:
                self.answer(404, {"ok": False, "message": "not found: " + path})

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            if path != "/_fake/mode":
                self.answer(404, {"ok": False, "message": "not found: " + path})
                return
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                self.answer(200, fake.set_mode(body))
            except ValueError as e:
                self.answer(400, {"ok": False, "message": str(e)})

    return Handler


def serve(argv):
    ap = argparse.ArgumentParser(prog="fakefluentd.py [serve]")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=24444)
    ap.add_argument("--ready-file")
    ap.add_argument("--buffer-dir", help="the live output's buffer path")
    ap.add_argument("--conf-dir", help="directory of *.conf recovery snippets")
    ap.add_argument("--out", required=True, help='the "S3": shipped records are appended here')
    ap.add_argument("--flush-delay", type=float, default=0.0)
    ap.add_argument("--stuck", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--interval", type=float, default=1.0, help="recovery outputs' flush_interval")
    ap.add_argument("--reload-delay", type=float, default=0.2, help="time a config.reload takes")
    args = ap.parse_args(argv)

    fake = FakeFluentd(args)
    try:
        with fake.lock:
            fake.load_config(initial=True)
    except (ConfigError, OSError) as e:
        print("fakefluentd: config error: %s" % e, file=sys.stderr)
        return 1

    server = ThreadingHTTPServer((args.host, args.port), make_handler(fake))
    server.daemon_threads = True
    port = server.server_address[1]

    def on_stop(signum, frame):
        fake.stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, lambda s, f: fake.request_flush())
    signal.signal(signal.SIGHUP, lambda s, f: fake.request_reload())

    threads = [threading.Thread(target=server.serve_forever, daemon=True),
               threading.Thread(target=fake.worker, daemon=True)]
    for t in threads:
        t.start()
    fake.log("listening on %s:%d, live buffer %s, conf dir %s", args.host, port,
             args.buffer_dir, args.conf_dir)
    if args.ready_file:
        write_atomic(args.ready_file, b"%d\n" % port)

    while not fake.stop.wait(0.2):
        pass
    server.shutdown()
    threads[1].join()
    fake.shutdown_flush()
    fake.log("stopped")
    server.server_close()
    return 0


# ---- writer ----------------------------------------------------------------

def record_line(n):
    return "record %06d %s" % (n, hashlib.sha1(b"%d" % n).hexdigest())


def write_chunks(argv):
    ap = argparse.ArgumentParser(prog="fakefluentd.py write")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("--per-chunk", type=int, default=100)
    ap.add_argument("--queued", action="store_true", help="name chunks buffer.q<id>.log")
    ap.add_argument("--tag", default="app.log")
    args = ap.parse_args(argv)
    if args.records < 0 or args.per_chunk < 1 or args.start < 0:
        ap.error("--records >= 0, --per-chunk >= 1, --start >= 0")

    os.makedirs(args.dir, exist_ok=True)
    state = "q" if args.queued else "b"
    n = args.start
    end = args.start + args.records
    while n < end:
        count = min(args.per_chunk, end - n)
        chunk = os.path.join(args.dir, "buffer.%s%s.log" % (state, secrets.token_hex(16)))
        meta = {"tag": args.tag, "timekey": int(time.time()) // 3600 * 3600, "variables": None,
                "seq": 0, "s": count, "c": int(time.time()), "m": int(time.time())}
        # .meta first, then the chunk under its final name: a reader never sees
        # a chunk without its .meta or half written.
        write_atomic(chunk + ".meta", json.dumps(meta).encode())
        write_atomic(chunk, "".join(record_line(i) + "\n" for i in range(n, n + count)).encode())
        print(chunk)
        n += count
    return 0


def main(argv):
    if argv[:1] == ["write"]:
        return write_chunks(argv[1:])
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
