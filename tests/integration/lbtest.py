# SPDX-License-Identifier: MIT
"""Helpers for lifeboat's integration tests: the fake AWS client, lifeboat runners,
filesystem images, and the loop-device / mount cleanup that keeps tests from
leaking anything. Standard library only (plus pytest where it fails a test)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

TESTS_DIR = Path(__file__).resolve().parent.parent
SOURCE_DIR = Path(os.environ.get("LIFEBOAT_SOURCE_DIR") or TESTS_DIR.parent)
FAKEAWS = TESTS_DIR / "fakeaws"        # the package, run as python3 tests/fakeaws
PYTHON = "/usr/bin/python3"
AWSCLI = "/usr/bin/aws"         # Debian's awscli, not whatever "aws" comes first in PATH

STATIC_ACCESS_KEY = "AKIDLIFEBOATTEST"
STATIC_SECRET_KEY = "lifeboat/test/secret/key/0123456789abcdef"
GIB = 1 << 30


class Failure(Exception):
        """Something a test helper could not do; the message says what and why."""


def _fail(msg: str) -> None:
        try:
                import pytest
        except ImportError:             # used outside pytest (scripts)
                raise Failure(msg) from None
        pytest.fail(msg, pytrace=False)


def require_root() -> None:
        """These tests need root and loop devices: fail (never skip) when missing."""
        if os.geteuid() != 0:
                _fail("lifeboat's integration tests need root (losetup, mknod, mount); run them as root")
        if not os.path.exists("/dev/loop-control"):
                _fail("lifeboat's integration tests need loop devices (/dev/loop-control is missing)")


# --------------------------------------------------------------------------
# system state: loop devices and mounts
# --------------------------------------------------------------------------

def run(argv: list[str], check: bool = True, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
                raise Failure(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
        return r


def _under(path: str, base: Path) -> bool:
        base_s = str(base.resolve())
        return path == base_s or path.startswith(base_s.rstrip("/") + "/")


def loop_devices() -> list[dict[str, str]]:
        """[{"name": "/dev/loop3", "back-file": "/path", "maj:min": "7:3", "autoclear": bool}]
        (back-file without the " (deleted)" losetup adds)."""
        out = run(["losetup", "-J", "-l", "--output", "NAME,BACK-FILE,MAJ:MIN,AUTOCLEAR"]).stdout
        if not out.strip():
                return []
        result = []
        for d in json.loads(out).get("loopdevices", []):
                back = (d.get("back-file") or "").removesuffix(" (deleted)")
                result.append({"name": d["name"], "back-file": back, "maj:min": (d.get("maj:min") or "").strip(),
                               "autoclear": d.get("autoclear") in (True, 1, "1")})
        return result


def _unescape_mountinfo(s: str) -> str:
        """mountinfo escapes space, tab, newline and backslash as \\ooo (octal)."""
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts() -> list[dict[str, str]]:
        """[{"target", "source", "maj:min"}] from /proc/self/mountinfo."""
        result = []
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                        fields = line.split()
                        sep = fields.index("-")
                        result.append({"maj:min": fields[2], "target": _unescape_mountinfo(fields[4]),
                                       "source": _unescape_mountinfo(fields[sep + 2])})
        return result


def leftovers_under(base: Path) -> dict[str, list[str]]:
        """Mounts and loop devices that belong to a test directory: mounted under it,
        or a loop device (mounted anywhere) whose backing file is under it."""
        loops = [l for l in loop_devices() if _under(l["back-file"], base)]
        loop_devs = {l["maj:min"] for l in loops}
        ms = [m["target"] for m in mounts() if _under(m["target"], base) or m["maj:min"] in loop_devs]
        return {"mounts": ms, "loops": [f"{l['name']} ({l['back-file']})" for l in loops]}


def cleanup_under(base: Path) -> dict[str, list[str]]:
        """Unmounts and detaches everything left under base (innermost mounts first, lazy
        unmount as a last resort). Returns what could NOT be cleaned up."""
        for _ in range(3):
                left = leftovers_under(base)
                if not left["mounts"] and not left["loops"]:
                        break
                for target in sorted(left["mounts"], key=lambda t: t.count("/"), reverse=True):
                        if run(["umount", target], check=False).returncode != 0:
                                run(["umount", "-l", target], check=False)
                for l in loop_devices():
                        if _under(l["back-file"], base):
                                run(["losetup", "-d", l["name"]], check=False)
                time.sleep(0.2)         # autoclear loops go away asynchronously
        return leftovers_under(base)


def describe_leftovers(left: dict[str, list[str]]) -> str:
        parts = []
        if left["mounts"]:
                parts.append("mounts: " + ", ".join(left["mounts"]))
        if left["loops"]:
                parts.append("loop devices: " + ", ".join(left["loops"]))
        return "; ".join(parts)


# --------------------------------------------------------------------------
# filesystem images
# --------------------------------------------------------------------------

def _mkfs(path: Path, fs: str, uuid: str | None, label: str | None) -> None:
        if fs == "xfs":
                argv = ["mkfs.xfs", "-q", "-f"]
                if uuid:
                        argv += ["-m", f"uuid={uuid}"]
                if label:
                        argv += ["-L", label]
        elif fs == "ext4":
                argv = ["mkfs.ext4", "-q", "-F"]
                if uuid:
                        argv += ["-U", uuid]
                if label:
                        argv += ["-L", label]
        else:
                raise ValueError(f"unknown filesystem {fs!r}")
        run(argv + [str(path)])


@contextlib.contextmanager
def mounted_image(path: Path | str, readonly: bool = False) -> Iterator[Path]:
        """Mounts an image (not attached anywhere else!) through its own loop device in a
        scratch directory beside it; always unmounted and detached again."""
        path = Path(path)
        mnt = Path(tempfile.mkdtemp(prefix=f".mnt-{path.name}-", dir=path.parent))
        loop = run(["losetup", "--find", "--show"] + (["--read-only"] if readonly else []) + [str(path)]).stdout.strip()
        mounted = False
        try:
                # -p: probe for real; blkid's cache may remember an earlier user of this loop device
                fstype = run(["blkid", "-p", "-o", "value", "-s", "TYPE", loop], check=False).stdout.strip()
                opts = ["ro"] if readonly else []
                if fstype == "xfs":
                        opts.append("nouuid")   # the same image may be mounted elsewhere by lifeboat
                        if readonly:
                                opts.append("norecovery")
                elif fstype == "ext4" and readonly:
                        opts.append("noload")
                argv = ["mount"] + (["-o", ",".join(opts)] if opts else []) + [loop, str(mnt)]
                run(argv)
                mounted = True
                yield mnt
        finally:
                if mounted:
                        if run(["umount", str(mnt)], check=False).returncode != 0:
                                run(["umount", "-l", str(mnt)], check=False)
                run(["losetup", "-d", loop], check=False)
                with contextlib.suppress(OSError):
                        mnt.rmdir()


def make_image(path: Path | str, size_gib: int = 1, fs: str | None = "xfs",
               files: dict[str, bytes | str] | None = None, uuid: str | None = None,
               label: str | None = None) -> Path:
        """A sparse image of size_gib GiB, optionally with a filesystem and files in it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
                f.truncate(size_gib * GIB)
        if fs:
                _mkfs(path, fs, uuid, label)
        if files:
                if not fs:
                        raise ValueError("files need a filesystem")
                with mounted_image(path) as mnt:
                        for rel, content in files.items():
                                p = mnt / rel
                                p.parent.mkdir(parents=True, exist_ok=True)
                                p.write_bytes(content.encode() if isinstance(content, str) else content)
                        os.sync()
        return path


def image_files(path: Path | str) -> dict[str, bytes]:
        """Every regular file in an image (mounted read-only): {relpath: content}."""
        result = {}
        with mounted_image(path, readonly=True) as mnt:
                for root, dirs, names in os.walk(mnt):
                        dirs[:] = [d for d in dirs if not (Path(root) == mnt and d == "lost+found")]
                        for n in names:
                                p = Path(root) / n
                                if p.is_file() and not p.is_symlink():
                                        result[str(p.relative_to(mnt))] = p.read_bytes()
        return result


# --------------------------------------------------------------------------
# SigV4 (for tests that talk to the fake EC2 directly)
# --------------------------------------------------------------------------

def sigv4_headers(host: str, body: bytes, access_key: str, secret_key: str, region: str,
                  token: str | None = None, service: str = "ec2",
                  when: dt.datetime | None = None) -> dict[str, str]:
        """Headers for a signed form POST to "/" (no query string), per the SigV4 spec."""
        when = when or dt.datetime.now(dt.timezone.utc)
        amz_date = when.strftime("%Y%m%dT%H%M%SZ")
        headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8",
                   "host": host, "x-amz-date": amz_date}
        if token:
                headers["x-amz-security-token"] = token
        signed = sorted(headers)
        canonical = "\n".join(["POST", "/", "", "".join(f"{h}:{headers[h]}\n" for h in signed),
                               ";".join(signed), hashlib.sha256(body).hexdigest()])
        scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + secret_key).encode()
        for part in (amz_date[:8], region, service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                    f"SignedHeaders={';'.join(signed)}, Signature={sig}")
        return headers


# --------------------------------------------------------------------------
# the fake AWS
# --------------------------------------------------------------------------

class HttpAnswer:
        def __init__(self, status: int, body: bytes, headers: dict[str, str]):
                self.status = status
                self.body = body
                self.headers = headers

        @property
        def text(self) -> str:
                return self.body.decode("utf-8", errors="replace")

        def __repr__(self) -> str:
                return f"HttpAnswer({self.status}, {self.text[:200]!r})"


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> HttpAnswer:
        """One HTTP exchange; HTTP errors are answers too."""
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                        return HttpAnswer(r.status, r.read(), dict(r.headers))
        except urllib.error.HTTPError as e:
                return HttpAnswer(e.code, e.read(), dict(e.headers))


class FakeAWS:
        """A running tests/fakeaws/ and a client for its control API."""

        def __init__(self, workdir: Path, proc: subprocess.Popen, info: dict[str, Any], region: str):
                self.workdir = workdir
                self.state_dir = workdir / "fakeaws"
                self.proc = proc
                self.pid = info["pid"]
                self.imds_port = info["imds_port"]
                self.ec2_port = info["ec2_port"]
                self.region = region
                self.ec2_endpoint = f"http://127.0.0.1:{self.ec2_port}"
                self.log_path = self.state_dir / "fakeaws.log"
                self.children: list[subprocess.Popen] = []

        @classmethod
        def start(cls, workdir: Path, region: str = "us-east-1", timeout: float = 15) -> "FakeAWS":
                workdir = Path(workdir).resolve()
                state = workdir / "fakeaws"
                state.mkdir(parents=True, exist_ok=True)
                ready = workdir / "fakeaws.ready"
                out = open(workdir / "fakeaws.out", "wb")
                proc = subprocess.Popen([PYTHON, str(FAKEAWS), "--state-dir", str(state), "--region", region,
                                         "--ready-file", str(ready), "--exit-with-parent"],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                out.close()
                deadline = time.monotonic() + timeout
                while not ready.exists():
                        if proc.poll() is not None or time.monotonic() > deadline:
                                proc.kill()
                                proc.wait()
                                output = (workdir / "fakeaws.out").read_text(errors="replace")
                                raise Failure(f"fakeaws did not start (exit {proc.returncode}):\n{output}")
                        time.sleep(0.02)
                return cls(workdir, proc, json.loads(ready.read_text()), region)

        def stop(self) -> list[str]:
                """Stops lifeboat processes started by start_lifeboat, then the fake: SIGTERM
                (the fake detaches its loop devices), SIGKILL after 5 s. Returns problems
                of the fake itself: unclean exit, exceptions in its request handlers."""
                for child in self.children:
                        self._stop_process(child, 5)
                problems = []
                if self.proc.poll() is not None:
                        problems.append(f"fakeaws died during the test (exit {self.proc.returncode})")
                elif not self._stop_process(self.proc, 5):
                        problems.append("fakeaws did not stop within 5 s of SIGTERM (killed)")
                elif self.proc.returncode != 0:
                        problems.append(f"fakeaws exited with {self.proc.returncode}")
                out = self.workdir / "fakeaws.out"
                text = out.read_text(errors="replace") if out.exists() else ""
                if "Traceback" in text:
                        problems.append(f"fakeaws raised exceptions (see {out}):\n{text[-3000:]}")
                return problems

        @staticmethod
        def _stop_process(p: subprocess.Popen, grace: float) -> bool:
                """True when it stopped within the grace time."""
                if p.poll() is not None:
                        return True
                p.send_signal(signal.SIGTERM)
                try:
                        p.wait(grace)
                        return True
                except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
                        return False

        # -- control API --

        def control(self, method: str, path: str, payload: Any = None) -> Any:
                body = json.dumps(payload).encode() if payload is not None else None
                a = http(method, f"{self.ec2_endpoint}/_fake/{path}", body,
                         {"Content-Type": "application/json"} if body else None)
                if a.status != 200:
                        raise Failure(f"fakeaws {method} /_fake/{path}: {a.status} {a.text.strip()}")
                return json.loads(a.body)

        def add_instance(self, **kw: Any) -> dict[str, Any]:
                """Launches a fake instance. kw: instance_id, availability_zone, az_id, instance_type,
                lifecycle, device_style ("nvme"|"xen"), attachment_slots, tags, buffer={device,
                size_gib, image, delete_on_termination, tags}. Returns the instance as JSON
                (instance_id, sysfs_root, dev_root, imds_endpoint, buffer_volume_id, ...)."""
                return self.control("POST", "instances", kw)

        def instances(self) -> list[dict[str, Any]]:
                return self.control("GET", "instances")

        def instance(self, iid: str) -> dict[str, Any]:
                return self.control("GET", f"instances/{iid}")

        def add_volume(self, **kw: Any) -> str:
                """Creates a volume (availability_zone, size_gib, image, tags, multi_attach,
                volume_type, state, volume_id, create_time: ISO 8601 to back-date it) and
                returns its id."""
                return self.control("POST", "volumes", kw)["volume_id"]

        def terminate(self, iid: str) -> dict[str, Any]:
                return self.control("POST", f"instances/{_iid(iid)}/terminate", {})

        def volumes(self) -> list[dict[str, Any]]:
                """Every volume the fake knows, deleted ones included (state "deleted")."""
                return self.control("GET", "volumes")

        def volume(self, vid: str) -> dict[str, Any] | None:
                for v in self.volumes():
                        if v["volume_id"] == vid:
                                return v
                return None

        def events(self, iid: str | dict, **kw: Any) -> dict[str, Any]:
                """spot={"action","time"}|None, rebalance={"noticeTime"}|None,
                lifecycle_state=str|None, spot_after_s=seconds."""
                return self.control("POST", f"instances/{_iid(iid)}/events", kw)

        def fault(self, **kw: Any) -> dict[str, Any]:
                """action (EC2 Action | "*" | "imds"), kind, count (default 1, -1 forever),
                latency_ms, status (5xx), path (imds: substring of the path)."""
                return self.control("POST", "faults", kw)

        def faults(self) -> list[dict[str, Any]]:
                return self.control("GET", "faults")

        def reset_faults(self) -> None:
                self.control("POST", "faults/reset", {})

        def config(self, **kw: Any) -> dict[str, Any]:
                return self.control("POST", "config", kw)

        def requests(self, service: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
                return [r for r in self.control("GET", "requests")
                        if (service is None or r["service"] == service) and (action is None or r["action"] == action)]

        def reset_requests(self) -> None:
                self.control("POST", "requests/reset", {})

        # -- waiting --

        def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 10,
                     interval: float = 0.05) -> Any:
                deadline = time.monotonic() + timeout
                while True:
                        value = predicate()
                        if value:
                                return value
                        if time.monotonic() > deadline:
                                raise Failure(f"timed out after {timeout}s waiting for {what}")
                        time.sleep(interval)

        def wait_volume(self, vid: str, state: str, timeout: float = 10) -> dict[str, Any]:
                """Waits for a volume state (available, in-use, deleted)."""
                return self.wait_for(f"{vid} to be {state}",
                                     lambda: (v := self.volume(vid)) and v["state"] == state and v, timeout)

        def wait_attachment(self, vid: str, status: str, timeout: float = 10) -> dict[str, Any]:
                """Waits for the volume's (first) attachment to reach a status; returns it."""
                def check() -> Any:
                        v = self.volume(vid)
                        return v and v["attachments"] and v["attachments"][0]["status"] == status \
                                and v["attachments"][0]
                return self.wait_for(f"{vid}'s attachment to be {status}", check, timeout)

        # -- talking to the services directly --

        def ec2(self, action: str, params: dict[str, str] | None = None, *,
                access_key: str = STATIC_ACCESS_KEY, secret_key: str = STATIC_SECRET_KEY,
                token: str | None = None, timeout: float = 30) -> HttpAnswer:
                """A signed EC2 Query API call (form POST)."""
                form = {"Action": action, "Version": "2016-11-15", **(params or {})}
                body = urllib.parse.urlencode(form, quote_via=urllib.parse.quote).encode()
                host = f"127.0.0.1:{self.ec2_port}"
                headers = sigv4_headers(host, body, access_key, secret_key, self.region, token)
                return http("POST", self.ec2_endpoint + "/", body, headers, timeout)

        def imds_url(self, instance: str | dict, path: str) -> str:
                return f"http://127.0.0.1:{self.imds_port}/{_iid(instance)}{path}"

        def imds_token(self, instance: str | dict, ttl: int = 21600) -> str:
                a = http("PUT", self.imds_url(instance, "/latest/api/token"),
                         headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
                if a.status != 200:
                        raise Failure(f"IMDS token: {a.status} {a.text}")
                return a.text

        def imds(self, instance: str | dict, path: str, token: str | None = None) -> HttpAnswer:
                """GET an IMDS path as the instance (fetches a token unless one is given)."""
                token = token or self.imds_token(instance)
                return http("GET", self.imds_url(instance, path), headers={"X-aws-ec2-metadata-token": token})

        # -- running lifeboat as an instance --

        def env_for(self, instance: str | dict, use_role: bool = False, region: bool = True) -> dict[str, str]:
                """The environment of lifeboat running on this fake instance: endpoints, its own
                sysfs and /dev, and its own directories under the test's tmp dir. Only PATH, LANG
                and the sanitizer options come from the developer's environment."""
                info = self.instance(_iid(instance))
                iid = info["instance_id"]
                home = self.workdir / "instances" / iid
                dirs = {name: home / name for name in ("run", "buffer", "recovery", "fluentd.d")}
                for d in dirs.values():
                        d.mkdir(parents=True, exist_ok=True)
                env = {
                        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT": info["imds_endpoint"],
                        "AWS_ENDPOINT_URL_EC2": self.ec2_endpoint,
                        "LIFEBOAT_SYSFS_ROOT": info["sysfs_root"],
                        "LIFEBOAT_DEV_ROOT": info["dev_root"],
                        "LIFEBOAT_RUN_DIR": str(dirs["run"]),
                        "LIFEBOAT_BUFFER_MOUNT": str(dirs["buffer"]),
                        "LIFEBOAT_RECOVERY_ROOT": str(dirs["recovery"]),
                        "LIFEBOAT_FLUENTD_CONF_DIR": str(dirs["fluentd.d"]),
                        "LIFEBOAT_FLUENTD_TEMPLATE": str(self._fluentd_template()),
                        "LIFEBOAT_GROUP": "test-group",
                        "LIFEBOAT_CONFIG": str(home / "lifeboat.conf"),          # does not exist
                        "LIFEBOAT_ECS_CONFIG": str(home / "ecs.config"),         # does not exist
                }
                # LANG, and the sanitizer settings of scripts/test's ASan+UBSan pass.
                for name in ("LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
                        if name in os.environ:
                                env[name] = os.environ[name]
                if region:
                        env["AWS_REGION"] = self.region
                if not use_role:
                        env["AWS_ACCESS_KEY_ID"] = STATIC_ACCESS_KEY
                        env["AWS_SECRET_ACCESS_KEY"] = STATIC_SECRET_KEY
                return env

        def _fluentd_template(self) -> Path:
                shipped = SOURCE_DIR / "packaging" / "fluentd" / "recovery.conf.in"
                if shipped.exists():
                        return shipped
                t = self.workdir / "recovery.conf.in"
                if not t.exists():
                        t.write_text("# test template (packaging/fluentd/recovery.conf.in is missing)\n"
                                     "<label @LIFEBOAT_{{volume_id}}>\n  <match **>\n    @type file\n"
                                     "    @id lifeboat_{{volume_id}}_file\n    path {{mount_path}}/delivered\n"
                                     "    <buffer>\n      @type file\n      path {{mount_path}}/s3\n"
                                     "    </buffer>\n  </match>\n</label>\n")
                return t

        def start_lifeboat(self, env: dict[str, str], *args: str) -> subprocess.Popen:
                """Starts lifeboat in the background (e.g. watch); stopped at teardown."""
                p = subprocess.Popen([lifeboat_bin(), *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.children.append(p)
                return p


def _iid(instance: str | dict) -> str:
        return instance["instance_id"] if isinstance(instance, dict) else instance


def lifeboat_bin() -> str:
        b = os.environ.get("LIFEBOAT_BIN")
        if not b or not os.access(b, os.X_OK):
                _fail(f"LIFEBOAT_BIN must name the built lifeboat binary (got {b!r}); run through ctest "
                      "or set it by hand")
        return b  # type: ignore[return-value]


def run_lifeboat(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Runs lifeboat to completion; stdout/stderr captured as text."""
        return subprocess.run([lifeboat_bin(), *args], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)


def awscli(fake: FakeAWS, home: Path, *args: str, access_key: str = STATIC_ACCESS_KEY,
           secret_key: str = STATIC_SECRET_KEY, session_token: str | None = None,
           extra_env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Debian's awscli against the fake EC2, isolated from the developer's AWS setup."""
        env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(home),
                "AWS_CONFIG_FILE": str(home / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_PAGER": "",
        }
        if access_key:
                env["AWS_ACCESS_KEY_ID"] = access_key
                env["AWS_SECRET_ACCESS_KEY"] = secret_key
        if session_token:
                env["AWS_SESSION_TOKEN"] = session_token
        env.update(extra_env or {})
        argv = [AWSCLI, "--endpoint-url", fake.ec2_endpoint, "--region", fake.region, "--output", "json", *args]
        return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
