# SPDX-License-Identifier: MIT
"""The control API under /_fake/ on the EC2 port (JSON in, JSON out, no signature): tests
create instances and volumes, terminate instances, inject events, faults and settings, make
Auto Scaling groups, their hooks and scale-ins, and read the request log. Errors are {"error": "..."} with 400/404/409/500."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from .autoscaling import HOOK_NAME_RE, LAUNCHING, RESULTS, TERMINATING
from .base import AwsError, ControlError, Reply
from .model import Volume

if TYPE_CHECKING:
        from .server import FakeAws


class ControlApi:
        """/_fake/...: JSON in, JSON out, no signature."""

        def __init__(self, app: "FakeAws"):
                self.app = app

        def answer(self, method: str, path: str, body: bytes) -> Reply:
                try:
                        payload = json.loads(body) if body.strip() else {}
                        if not isinstance(payload, dict) and payload is not None:
                                raise ControlError("the body must be a JSON object")
                        status, result = self.route(method, path.rstrip("/"), payload or {})
                except ControlError as e:
                        status, result = e.status, {"error": str(e)}
                except json.JSONDecodeError as e:
                        status, result = 400, {"error": f"bad JSON: {e}"}
                except AwsError as e:
                        status, result = 400, {"error": e.message, "code": e.code}
                self.app.log("control", f"{method} {path} -> {status}")
                return Reply(status, (json.dumps(result, indent=1) + "\n").encode(), "application/json")

        def route(self, method: str, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
                app, store = self.app, self.app.store
                parts = path.split("/")[2:]     # after /_fake
                match (method, parts):
                        case ("GET", ["health"]):
                                return 200, {"ok": True}
                        case ("POST", ["instances"]):
                                inst, buffer_id = store.create_instance(payload)
                                result = inst.as_json(app.imds_port)
                                if buffer_id:
                                        result["buffer_volume_id"] = buffer_id
                                return 200, result
                        case ("GET", ["instances"]):
                                with store.lock:
                                        return 200, [i.as_json(app.imds_port) for i in store.instances.values()]
                        case ("GET", ["instances", iid]):
                                with store.lock:
                                        if iid not in store.instances:
                                                raise ControlError(f"no instance {iid}", 404)
                                        return 200, store.instances[iid].as_json(app.imds_port)
                        case ("POST", ["instances", iid, "terminate"]):
                                return 200, store.terminate_instance(iid)
                        case ("POST", ["instances", iid, "events"]):
                                store.set_events(iid, payload)
                                with store.lock:
                                        return 200, store.instances[iid].as_json(app.imds_port)["events"]
                        case ("POST", ["volumes"]):
                                return 200, {"volume_id": self.create_volume(payload).id}
                        case ("GET", ["volumes"]):
                                with store.lock:
                                        hosts = {i.id: i.host for i in store.instances.values()}
                                        return 200, [v.as_json(hosts) for v in store.volumes.values()]
                        case ("GET", ["volumes", vid]):
                                with store.lock:
                                        if vid not in store.volumes:
                                                raise ControlError(f"no volume {vid}", 404)
                                        hosts = {i.id: i.host for i in store.instances.values()}
                                        return 200, store.volumes[vid].as_json(hosts)
                        case ("GET", ["snapshots"]):
                                with store.lock:
                                        store.live_snapshots()          # settles pending ones
                                        now = time.monotonic()
                                        return 200, [x.as_json(now) for x in store.snapshots.values()]
                        case ("GET", ["snapshots", sid]):
                                with store.lock:
                                        store.live_snapshots()
                                        if sid not in store.snapshots:
                                                raise ControlError(f"no snapshot {sid}", 404)
                                        return 200, store.snapshots[sid].as_json(time.monotonic())
                        case ("POST", ["faults"]):
                                return 200, app.faults.add(payload).as_json()
                        case ("GET", ["faults"]):
                                return 200, app.faults.list()
                        case ("POST", ["faults", "reset"]):
                                app.faults.reset()
                                return 200, {"ok": True}
                        case ("POST", ["throttle"]):
                                return 200, app.throttle.set(payload)
                        case ("GET", ["throttle"]):
                                return 200, app.throttle.list()
                        case ("POST", ["throttle", "reset"]):
                                app.throttle.reset()
                                return 200, {"ok": True}
                        case ("POST", ["config"]):
                                app.update_config(payload)
                                return 200, app.config.as_json()
                        case ("GET", ["config"]):
                                return 200, app.config.as_json()
                        case ("GET", ["requests"]):
                                return 200, app.requests.list()
                        case ("POST", ["requests", "reset"]):
                                app.requests.reset()
                                return 200, {"ok": True}
                        case ("GET", ["metrics"]):
                                return 200, app.cloudwatch.datapoints()
                        case ("POST", ["metrics", "reset"]):
                                app.cloudwatch.reset()
                                return 200, {"ok": True}
                        case ("POST", ["autoscaling", "groups"]):
                                return 200, self.create_group(payload)
                        case ("GET", ["autoscaling", "groups"]):
                                return 200, app.autoscaling.as_json()
                        case ("GET", ["autoscaling", "groups", name]):
                                return 200, app.autoscaling.as_json(urllib.parse.unquote(name))
                        case ("POST", ["autoscaling", "groups", name, "instances"]):
                                app.autoscaling.add_instance(urllib.parse.unquote(name), self.instance_id(payload))
                                return 200, app.autoscaling.as_json(urllib.parse.unquote(name))
                        case ("POST", ["autoscaling", "groups", name, "hooks"]):
                                self.put_hook(urllib.parse.unquote(name), payload)
                                return 200, app.autoscaling.as_json(urllib.parse.unquote(name))
                        case ("POST", ["autoscaling", "groups", name, "scale-in"]):
                                m = app.autoscaling.scale_in(urllib.parse.unquote(name), self.instance_id(payload))
                                with store.lock:
                                        return 200, m.as_json()
                        case ("POST", ["web_identities"]):
                                return 200, app.sts.register(payload).as_json()
                        case ("GET", ["web_identities"]):
                                with app.sts.lock:
                                        return 200, [i.as_json() for i in app.sts.identities.values()]
                        case ("GET", ["sts", "calls"]):
                                return 200, app.sts.call_log()
                        case ("POST", ["container"]):
                                role = app.container.register(payload)
                                base = f"http://127.0.0.1:{app.container_port}"
                                return 200, {**role.as_json(), "base": base, "url": base + role.path}
                        case ("GET", ["container"]):
                                return 200, app.container.list()
                raise ControlError(f"no such control endpoint: {method} {path}", 404)

        @staticmethod
        def instance_id(p: dict[str, Any]) -> str:
                iid = p.get("instance_id")
                if not isinstance(iid, str) or set(p) - {"instance_id"}:
                        raise ControlError("expected {\"instance_id\": \"i-...\"}")
                return iid

        def create_group(self, p: dict[str, Any]) -> Any:
                unknown = set(p) - {"name", "instances", "hooks"}
                if unknown:
                        raise ControlError(f"unknown group keys: {', '.join(sorted(unknown))}")
                instances, hooks = p.get("instances") or [], p.get("hooks") or []
                if not isinstance(instances, list) or not isinstance(hooks, list):
                        raise ControlError("instances and hooks must be lists")
                model = self.app.autoscaling
                g = model.create_group(p.get("name"))
                for h in hooks:
                        self.put_hook(g.name, h)
                for iid in instances:
                        model.add_instance(g.name, iid)
                return model.as_json(g.name)

        def put_hook(self, group: str, h: Any) -> None:
                """A hook as tests want it: any heartbeat timeout of a second or more (AWS's least is 30 s,
                which PutLifecycleHook enforces), the transition defaults to termination."""
                if not isinstance(h, dict) or set(h) - {"name", "transition", "heartbeat_timeout", "default_result",
                                                         "global_timeout"}:
                        raise ControlError("a hook is {name, transition?, heartbeat_timeout?, default_result?, "
                                           "global_timeout?}")
                name = h.get("name")
                if not isinstance(name, str) or not HOOK_NAME_RE.fullmatch(name):
                        raise ControlError("a hook needs a name of 1 to 255 of A-Za-z0-9-_/")
                for key in ("heartbeat_timeout", "global_timeout"):
                        v = h.get(key)
                        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                                raise ControlError(f"{key} must be a positive integer (seconds)")
                if h.get("default_result", "CONTINUE") not in RESULTS:
                        raise ControlError("default_result must be CONTINUE or ABANDON")
                if h.get("transition", TERMINATING) not in (TERMINATING, LAUNCHING):
                        raise ControlError(f"transition must be {TERMINATING} or {LAUNCHING}")
                self.app.autoscaling.put_hook(group, name, h.get("transition", TERMINATING), h.get("heartbeat_timeout"),
                                              h.get("default_result"), h.get("global_timeout"))

        def create_volume(self, p: dict[str, Any]) -> Volume:
                known = {"availability_zone", "size_gib", "image", "tags", "multi_attach", "volume_type",
                         "state", "volume_id", "create_time"}
                unknown = set(p) - known
                if unknown:
                        raise ControlError(f"unknown volume keys: {', '.join(sorted(unknown))}")
                size = p.get("size_gib")
                if size is not None and (not isinstance(size, int) or size < 1):
                        raise ControlError("size_gib must be a positive integer")
                tags = p.get("tags") or {}
                if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
                        raise ControlError("tags must be an object of strings")
                return self.app.store.create_volume(
                        availability_zone=p.get("availability_zone") or f"{self.app.region}a",
                        size_gib=size, image=p.get("image"), tags=tags,
                        multi_attach=bool(p.get("multi_attach", False)),
                        volume_type=p.get("volume_type", "gp3"), state=p.get("state", "available"),
                        volume_id=p.get("volume_id"), create_time=self.parse_time("create_time", p.get("create_time")))

        @staticmethod
        def parse_time(key: str, value: Any) -> dt.datetime | None:
                """An ISO 8601 time with a zone ("2026-01-02T03:04:05Z"), for back-dating."""
                if value is None:
                        return None
                try:
                        t = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
                except ValueError:
                        t = None
                if t is None or t.tzinfo is None:
                        raise ControlError(f"{key} must be an ISO 8601 time with a zone, like 2026-01-02T03:04:05Z")
                return t.astimezone(dt.timezone.utc)
