# SPDX-License-Identifier: MIT
"""The fake AWS from the outside: HTTP, SigV4 signing, FakeAWS (starting and stopping
tests/fakeaws/, its control API, talking to its IMDS and EC2, the environment of lifeboat
on one of its instances) and Debian's awscli against it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib
from pathlib import Path
from typing import Any

from .base import AWSCLI, FAKEAWS, PYTHON, SOURCE_DIR, STATIC_ACCESS_KEY, STATIC_SECRET_KEY, Failure
from .images import make_image
from .lifeboat import lifeboat_bin
from .processes import stop_process, wait_for, wait_ready
from .system import clean_dir, is_under, loop_devices


def group_tags(group: str, state: str | None = None, owner: str | None = None, fs_uuid: str | None = None,
               **more: str) -> dict[str, str]:
        """lifeboat's tags on a volume of a group: lifeboat:group, and lifeboat:state, owner and
        fs-uuid where given; each keyword more, flushed_at=... say, as lifeboat:flushed-at."""
        tags = {"lifeboat:group": group}
        for key, value in {"state": state, "owner": owner, "fs-uuid": fs_uuid}.items():
                if value:
                        tags["lifeboat:" + key] = value
        for key, value in more.items():
                tags["lifeboat:" + key.replace("_", "-")] = value
        return tags


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
                self.container_port = info["container_port"]
                self.region = region
                self.ec2_endpoint = f"http://127.0.0.1:{self.ec2_port}"
                # One port serves every Query service (the signature's scope picks the service);
                # the container credentials have a port of their own.
                self.cloudwatch_endpoint = self.ec2_endpoint
                self.sts_endpoint = self.ec2_endpoint
                self.container_endpoint = f"http://127.0.0.1:{self.container_port}"
                self.log_path = self.state_dir / "fakeaws.log"
                self.children: list[subprocess.Popen] = []

        @classmethod
        def start(cls, workdir: Path, region: str = "us-east-1", timeout: float = 15) -> "FakeAWS":
                workdir = Path(workdir).resolve()
                state = workdir / "fakeaws"
                state.mkdir(parents=True, exist_ok=True)
                ready = workdir / "fakeaws.ready"
                out_path = workdir / "fakeaws.out"
                out = open(out_path, "wb")
                proc = subprocess.Popen([PYTHON, str(FAKEAWS), "--state-dir", str(state), "--region", region,
                                         "--ready-file", str(ready), "--exit-with-parent"],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                out.close()
                info = wait_ready(proc, ready, "fakeaws", lambda: out_path.read_text(errors="replace"), timeout)
                return cls(workdir, proc, json.loads(info), region)

        def stop(self) -> list[str]:
                """Stops lifeboat processes started by start_lifeboat, then the fake: SIGTERM
                (the fake detaches its loop devices), SIGKILL after 5 s. Returns problems
                of the fake itself: unclean exit, exceptions in its request handlers."""
                for child in self.children:
                        stop_process(child, 5)
                problems = []
                if self.proc.poll() is not None:
                        problems.append(f"fakeaws died during the test (exit {self.proc.returncode})")
                elif not stop_process(self.proc, 5):
                        problems.append("fakeaws did not stop within 5 s of SIGTERM (killed)")
                elif self.proc.returncode != 0:
                        problems.append(f"fakeaws exited with {self.proc.returncode}")
                out = self.workdir / "fakeaws.out"
                text = out.read_text(errors="replace") if out.exists() else ""
                if "Traceback" in text:
                        problems.append(f"fakeaws raised exceptions (see {out}):\n{text[-3000:]}")
                return problems

        def shutdown(self) -> list[str]:
                """stop(), then checks that the fake detached its own loop devices (mounted ones
                are left to autoclear when unmounted, which is what losetup -d does to them), and
                unmounts and detaches whatever is left in the work dir. Returns every problem."""
                problems = self.stop()
                stale = [l["name"] for l in loop_devices()
                         if is_under(l["back-file"], self.state_dir) and not l["autoclear"]]
                if stale:
                        problems.append(f"fakeaws left loop devices attached: {', '.join(stale)}")
                return problems + clean_dir(self.workdir)

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
                lifecycle, device_style ("nvme"|"xen"), attachment_slots, tags, metadata_tags (instance
                tags in IMDS), buffer={device,
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

        def add_orphan(self, image: Path, group: str, owner: str | None, fs: str | None = "xfs",
                       files: dict[str, bytes | str] | None = None, fs_uuid: str | None = None,
                       tag_uuid: str | None = "same", extra_tags: dict[str, str] | None = None,
                       thin: bool = False, **volume_kw: Any) -> tuple[str, str | None]:
                """A dirty volume of the group left behind by a dead instance (owner): a new 1 GiB
                image with a filesystem (fs; fs_uuid, a random one if not given) and files in it,
                tagged with that UUID (tag_uuid "same"), another one, or none (None). thin: an
                ext4 that costs almost no disk (lbtest.images.THIN_EXT4), for many volumes.
                Returns (volume id, filesystem UUID)."""
                if fs and fs_uuid is None:
                        fs_uuid = str(uuidlib.uuid4())
                make_image(image, 1, fs, files if fs else None, fs_uuid if fs else None, thin=thin)
                tags = group_tags(group, "dirty", owner, fs_uuid if tag_uuid == "same" else tag_uuid)
                tags.update(extra_tags or {})
                return self.add_volume(image=str(image), tags=tags, **volume_kw), fs_uuid

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

        def snapshots(self) -> list[dict[str, Any]]:
                """Every snapshot the fake knows, deleted ones included (state "deleted")."""
                return self.control("GET", "snapshots")

        def live_snapshots(self) -> list[dict[str, Any]]:
                return [x for x in self.snapshots() if x["state"] != "deleted"]

        def tag(self, vid: str, key: str) -> str | None:
                v = self.volume(vid)
                return v and v["tags"].get(key)

        def describe(self, vid: str) -> str:
                """A volume in two lines: EC2 state, attachments; tags."""
                v = self.volume(vid)
                if v is None:
                        return f"{vid}: unknown to EC2"
                tags = " ".join(f"{k}={val}" for k, val in sorted(v["tags"].items()))
                where = ", ".join(f"attached to {a['instance_id']} at {a['device']} ({a['status']})"
                                  for a in v["attachments"]) or "attached nowhere"
                return f"{vid}: EC2 state {v['state']}, {where}\n    tags: {tags or '(none)'}"

        def events(self, iid: str | dict, **kw: Any) -> dict[str, Any]:
                """spot={"action","time"}|None, rebalance={"noticeTime"}|None,
                lifecycle_state=str|None, spot_after_s=seconds."""
                return self.control("POST", f"instances/{_iid(iid)}/events", kw)

        def fault(self, **kw: Any) -> dict[str, Any]:
                """action (EC2 Action | "*" | "imds"), kind, count (default 1, -1 forever),
                latency_ms, status (5xx), path (imds: substring of the path), timeout_ms
                (barrier: the next count requests of action wait for each other)."""
                return self.control("POST", "faults", kw)

        def throttle(self, action: str, capacity: int, refill_per_s: float) -> dict[str, Any]:
                """EC2's request rate limit: a token bucket for action ("*": each action its own)."""
                return self.control("POST", "throttle",
                                    {"action": action, "capacity": capacity, "refill_per_s": refill_per_s})

        def throttles(self) -> dict[str, Any]:
                """The rate limit's rules and buckets: {rules, buckets: {action: {tokens, allowed, throttled}}}."""
                return self.control("GET", "throttle")

        def reset_throttle(self) -> None:
                self.control("POST", "throttle/reset", {})

        def faults(self) -> list[dict[str, Any]]:
                return self.control("GET", "faults")

        def reset_faults(self) -> None:
                self.control("POST", "faults/reset", {})

        def config(self, **kw: Any) -> dict[str, Any]:
                return self.control("POST", "config", kw)

        # -- Auto Scaling --

        def add_group(self, name: str, instances: list[str] | None = None,
                      hooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
                """An Auto Scaling group with these instances (ids) and hooks ({name, transition,
                heartbeat_timeout, default_result, global_timeout}); returns the group."""
                return self.control("POST", "autoscaling/groups",
                                    {"name": name, "instances": instances or [], "hooks": hooks or []})

        def group(self, name: str) -> dict[str, Any]:
                """{name, hooks, instances: [{instance_id, lifecycle_state, scale_in_at, terminated_at,
                actions: [{hook, token, heartbeats, result, ended_by, ended_at, ...}]}]}; times are
                time.monotonic(), like the request log's."""
                return self.control("GET", f"autoscaling/groups/{urllib.parse.quote(name, safe='')}")

        def scale_in(self, group: str, instance: str | dict) -> dict[str, Any]:
                """The group terminates the instance: Terminating:Wait while termination hooks hold it."""
                return self.control("POST", f"autoscaling/groups/{urllib.parse.quote(group, safe='')}/scale-in",
                                    {"instance_id": _iid(instance)})

        def autoscaling(self, action: str, params: dict[str, str] | None = None) -> HttpAnswer:
                """A signed Auto Scaling Query API call (form POST, SigV4 service autoscaling)."""
                form = {"Action": action, "Version": "2011-01-01", **(params or {})}
                body = urllib.parse.urlencode(form, quote_via=urllib.parse.quote).encode()
                headers = sigv4_headers(f"127.0.0.1:{self.ec2_port}", body, STATIC_ACCESS_KEY, STATIC_SECRET_KEY,
                                        self.region, service="autoscaling")
                return http("POST", self.ec2_endpoint + "/", body, headers)

        def requests(self, service: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
                return [r for r in self.control("GET", "requests")
                        if (service is None or r["service"] == service) and (action is None or r["action"] == action)]

        def reset_requests(self) -> None:
                self.control("POST", "requests/reset", {})

        def metrics(self, namespace: str | None = None) -> list[dict[str, Any]]:
                """The datapoints the fake CloudWatch took, in order: namespace, metric_name, value,
                unit, timestamp, dimensions {name: value}, ..."""
                return [d for d in self.control("GET", "metrics") if namespace is None or d["namespace"] == namespace]

        def reset_metrics(self) -> None:
                self.control("POST", "metrics/reset", {})

        def web_identity(self, token: str, role_arns: list[str], **kw: Any) -> dict[str, Any]:
                """Makes STS accept token for these roles; kw: expired, subject, issuer, audience."""
                return self.control("POST", "web_identities", {"token": token, "role_arns": role_arns, **kw})

        def sts_calls(self) -> list[dict[str, Any]]:
                """Every AssumeRoleWithWebIdentity: token as received, role_arn, session_name, result,
                and what it handed out: access_key_id, secret_access_key, session_token, expiration."""
                return self.control("GET", "sts/calls")

        def container_role(self, **kw: Any) -> dict[str, Any]:
                """Serves container credentials: path (default /v2/credentials/<uuid>), token (the
                Authorization it wants, None: none), role_arn. Returns {path, url, base, ...}."""
                return self.control("POST", "container", kw)

        def container_roles(self) -> list[dict[str, Any]]:
                return self.control("GET", "container")

        # -- waiting --

        wait_for = staticmethod(wait_for)

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

        def cloudwatch(self, action: str, params: dict[str, str] | None = None, *,
                       access_key: str = STATIC_ACCESS_KEY, secret_key: str = STATIC_SECRET_KEY,
                       service: str = "monitoring", timeout: float = 30) -> HttpAnswer:
                """A signed CloudWatch Query API call (form POST), signed for service."""
                form = {"Action": action, "Version": "2010-08-01", **(params or {})}
                body = urllib.parse.urlencode(form, quote_via=urllib.parse.quote).encode()
                host = f"127.0.0.1:{self.ec2_port}"
                headers = sigv4_headers(host, body, access_key, secret_key, self.region, service=service)
                return http("POST", self.cloudwatch_endpoint + "/", body, headers, timeout)

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

        def env_for(self, instance: str | dict, use_role: bool = False, region: bool = True,
                    **settings: str) -> dict[str, str]:
                """The environment of lifeboat running on this fake instance: endpoints, its own
                sysfs and /dev, and its own directories under the test's tmp dir; settings on top.
                Only PATH, LANG and the sanitizer options come from the developer's environment."""
                info = self.instance(_iid(instance))
                iid = info["instance_id"]
                home = self.workdir / "instances" / iid
                dirs = {name: home / name for name in ("run", "buffer", "recovery", "fluentd.d", "state")}
                for d in dirs.values():
                        d.mkdir(parents=True, exist_ok=True)
                env = {
                        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT": info["imds_endpoint"],
                        "AWS_ENDPOINT_URL_EC2": self.ec2_endpoint,
                        "AWS_ENDPOINT_URL_CLOUDWATCH": self.cloudwatch_endpoint,
                        "AWS_ENDPOINT_URL_AUTO_SCALING": self.ec2_endpoint,
                        "LIFEBOAT_SYSFS_ROOT": info["sysfs_root"],
                        "LIFEBOAT_DEV_ROOT": info["dev_root"],
                        "LIFEBOAT_RUN_DIR": str(dirs["run"]),
                        "LIFEBOAT_STATE_DIR": str(dirs["state"]),
                        "LIFEBOAT_BUFFER_MOUNT": str(dirs["buffer"]),
                        "LIFEBOAT_RECOVERY_ROOT": str(dirs["recovery"]),
                        "LIFEBOAT_FLUENTD_CONF_DIR": str(dirs["fluentd.d"]),
                        "LIFEBOAT_FLUENTD_TEMPLATE": str(self._fluentd_template()),
                        "LIFEBOAT_GROUP": "test-group",
                        "LIFEBOAT_CONFIG": str(home / "lifeboat.conf"),          # does not exist
                        "LIFEBOAT_ECS_CONFIG": str(home / "ecs.config"),         # does not exist
                        # The credential chain never reads the developer's ~/.aws.
                        "AWS_CONFIG_FILE": str(home / "aws-config"),             # does not exist
                        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),  # does not exist
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
                env.update(settings)
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
