# SPDX-License-Identifier: MIT
"""Auto Scaling (Query API version 2011-01-01, SigV4 service "autoscaling"): groups of fake
instances, lifecycle hooks, and what a termination hook does at a scale-in: the instance waits
in Terminating:Wait (IMDS's autoscaling/target-lifecycle-state reads Terminated) until every
termination hook's action ends: CompleteLifecycleAction, its heartbeat timeout (restarted by
RecordLifecycleActionHeartbeat) or its global timeout, the last two with the hook's default
result. ABANDON ends the other hooks' actions too. Then the instance goes to
Terminating:Proceed and EC2 terminates it (store.py).

Actions: DescribeAutoScalingInstances, DescribeLifecycleHooks, PutLifecycleHook,
RecordLifecycleActionHeartbeat, CompleteLifecycleAction, in the awsquery shapes
(<ActionResult/> always there; errors as ErrorResponse/Error/Type/Code/Message). Groups, their
instances and scale-ins are made through the control API (control.py). Times in the control
API's JSON are time.monotonic(), like the request log's."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .base import AwsError, ControlError, Logger
from .query import AwsQueryService, indexed
from .store import Store
from .xmlout import Node

AS_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
GROUP_TAG = "aws:autoscaling:groupName"
RESULTS = ("CONTINUE", "ABANDON")
HOOK_NAME_RE = re.compile(r"[A-Za-z0-9\-_/]{1,255}")
GLOBAL_MAX_S = 172800           # 48 hours
MAX_IDS = 50
TICK_S = 0.05                   # how often timeouts are looked at


@dataclass(eq=False)
class Hook:
        name: str
        group: str
        transition: str
        heartbeat_timeout: int          # seconds
        default_result: str
        global_timeout: int             # seconds

        def as_json(self) -> dict[str, Any]:
                return {"name": self.name, "transition": self.transition, "heartbeat_timeout": self.heartbeat_timeout,
                        "default_result": self.default_result, "global_timeout": self.global_timeout}


@dataclass(eq=False)
class Action:
        """One termination hook's wait for one instance."""
        hook: Hook
        token: str
        started: float                  # time.monotonic()
        expires: float                  # the heartbeat timeout runs out
        deadline: float                 # the global timeout runs out
        heartbeats: list[float] = field(default_factory=list)
        result: str | None = None       # CONTINUE | ABANDON once ended
        ended_by: str | None = None     # complete | heartbeat-timeout | global-timeout | abandoned
        ended_at: float | None = None

        @property
        def active(self) -> bool:
                return self.result is None

        def end(self, result: str, by: str, at: float) -> None:
                self.result, self.ended_by, self.ended_at = result, by, at

        def as_json(self) -> dict[str, Any]:
                return {"hook": self.hook.name, "token": self.token, "started": self.started, "expires": self.expires,
                        "deadline": self.deadline, "heartbeats": list(self.heartbeats), "result": self.result,
                        "ended_by": self.ended_by, "ended_at": self.ended_at}


@dataclass(eq=False)
class Member:
        instance_id: str
        group: str
        state: str = "InService"        # InService | Terminating:Wait | Terminating:Proceed | Terminated
        actions: list[Action] = field(default_factory=list)
        scale_in_at: float | None = None
        terminated_at: float | None = None

        def as_json(self) -> dict[str, Any]:
                return {"instance_id": self.instance_id, "lifecycle_state": self.state, "scale_in_at": self.scale_in_at,
                        "terminated_at": self.terminated_at, "actions": [a.as_json() for a in self.actions]}


@dataclass(eq=False)
class Group:
        name: str
        hooks: dict[str, Hook] = field(default_factory=dict)
        members: dict[str, Member] = field(default_factory=dict)

        def as_json(self) -> dict[str, Any]:
                return {"name": self.name, "hooks": [h.as_json() for h in self.hooks.values()],
                        "instances": [m.as_json() for m in self.members.values()]}


def not_null(name: str) -> AwsError:
        return AwsError("ValidationError", f"1 validation error detected: Value null at '{name}' failed to satisfy "
                                           "constraint: Member must not be null")


class AutoScaling:
        """The groups and the rules of their lifecycle hooks. Runs under the store's lock: a
        scale-in ends in an EC2 termination, and IMDS reads the instances' lifecycle state."""

        def __init__(self, store: Store, log: Logger, stopping: threading.Event):
                self.store = store
                self.lock = store.lock
                self.log = log
                self.stopping = stopping
                self.groups: dict[str, Group] = {}
                threading.Thread(target=self._ticker, name="autoscaling-timeouts", daemon=True).start()

        def _ticker(self) -> None:
                """Ends the waits whose timeouts ran out, at the time they ran out."""
                while not self.stopping.wait(TICK_S):
                        self.expire()

        # -- lookups --

        def group(self, name: str) -> Group:
                g = self.groups.get(name)
                if g is None:
                        raise AwsError("ValidationError", f"AutoScalingGroup name not found - AutoScalingGroup {name} not found")
                return g

        def member_of(self, iid: str) -> Member | None:
                for g in self.groups.values():
                        if iid in g.members:
                                return g.members[iid]
                return None

        # -- setting up (the control API, and PutLifecycleHook) --

        def create_group(self, name: str) -> Group:
                if not isinstance(name, str) or not 1 <= len(name) <= 255 or "/" in name:
                        raise ControlError("a group needs a name of 1 to 255 characters without '/'")
                with self.lock:
                        if name in self.groups:
                                raise ControlError(f"group {name} exists", 409)
                        g = self.groups[name] = Group(name)
                        self.log("autoscaling", f"created group {name}")
                        return g

        def add_instance(self, name: str, iid: str) -> Member:
                with self.lock:
                        g = self.groups.get(name)
                        if g is None:
                                raise ControlError(f"no group {name}", 404)
                        inst = self.store.instances.get(iid)
                        if inst is None or not inst.running:
                                raise ControlError(f"no running instance {iid}", 404)
                        if self.member_of(iid):
                                raise ControlError(f"instance {iid} is in a group already", 409)
                        m = g.members[iid] = Member(iid, name)
                        inst.lifecycle_state = "InService"
                        inst.tags[GROUP_TAG] = name         # as Auto Scaling tags the instances it launches
                        self.log("autoscaling", f"{iid} joined {name}")
                        return m

        def put_hook(self, group: str, name: str, transition: str | None, heartbeat_timeout: int | None,
                     default_result: str | None, global_timeout: int | None = None) -> Hook:
                """Creates or updates a hook; what is not given keeps its value (or the default)."""
                with self.lock:
                        g = self.group(group)
                        old = g.hooks.get(name)
                        if old is None and transition is None:
                                raise AwsError("ValidationError", "The LifecycleTransition parameter is required "
                                                                  "when creating a lifecycle hook")
                        ht = heartbeat_timeout if heartbeat_timeout is not None else (old.heartbeat_timeout if old else 3600)
                        h = Hook(name, group, transition or old.transition,
                                 ht, default_result or (old.default_result if old else "ABANDON"),
                                 global_timeout or min(100 * ht, GLOBAL_MAX_S))
                        g.hooks[name] = h
                        self.log("autoscaling", f"hook {name} of {group}: {h.transition}, heartbeat timeout {ht} s, "
                                                f"global {h.global_timeout} s, default {h.default_result}")
                        return h

        # -- a scale-in and its end --

        def scale_in(self, name: str, iid: str) -> Member:
                """The group terminates this instance: it waits for every termination hook, or goes at once."""
                with self.lock:
                        g = self.groups.get(name)
                        if g is None:
                                raise ControlError(f"no group {name}", 404)
                        m = g.members.get(iid)
                        if m is None:
                                raise ControlError(f"instance {iid} is not in group {name}", 404)
                        if m.state != "InService":
                                raise ControlError(f"instance {iid} is {m.state}", 409)
                        now = time.monotonic()
                        m.scale_in_at = now
                        m.actions = [Action(h, str(uuid.uuid4()), now, now + h.heartbeat_timeout, now + h.global_timeout)
                                     for h in g.hooks.values() if h.transition == TERMINATING]
                        self.store.instances[iid].lifecycle_state = "Terminated"
                        if m.actions:
                                m.state = "Terminating:Wait"
                                self.log("autoscaling", f"scale-in of {iid}: Terminating:Wait for "
                                                        f"{', '.join(a.hook.name for a in m.actions)}")
                        else:
                                self._proceed(m, now)
                        return m

        def _proceed(self, m: Member, now: float) -> None:
                m.state = "Terminating:Proceed"
                self.store.terminate_instance(m.instance_id)
                m.state = "Terminated"
                m.terminated_at = now
                self.log("autoscaling", f"{m.instance_id} terminated ({', '.join(f'{a.hook.name}: {a.result} by {a.ended_by}' for a in m.actions) or 'no hooks'})")

        def _settle(self, m: Member, now: float) -> None:
                """After an action ended: ABANDON ends the others, and with all ended the instance goes."""
                if any(a.result == "ABANDON" for a in m.actions):
                        for a in m.actions:
                                if a.active:
                                        a.end("ABANDON", "abandoned", now)
                if m.state == "Terminating:Wait" and not any(a.active for a in m.actions):
                        self._proceed(m, now)

        def expire(self) -> None:
                now = time.monotonic()
                with self.lock:
                        for g in self.groups.values():
                                for m in g.members.values():
                                        if m.state != "Terminating:Wait":
                                                continue
                                        for a in m.actions:
                                                if a.active and now >= a.deadline:
                                                        a.end(a.hook.default_result, "global-timeout", a.deadline)
                                                elif a.active and now >= a.expires:
                                                        a.end(a.hook.default_result, "heartbeat-timeout", a.expires)
                                        self._settle(m, now)

        def _active_action(self, group: str, hook: str, iid: str | None, token: str | None) -> tuple[Member, Action]:
                g = self.group(group)
                for m in g.members.values():
                        if m.state != "Terminating:Wait" or (iid and m.instance_id != iid):
                                continue
                        for a in m.actions:
                                if a.active and a.hook.name == hook and (not token or a.token == token):
                                        return m, a
                if iid:
                        raise AwsError("ValidationError", f"No active Lifecycle Action found with instance ID {iid}")
                raise AwsError("ValidationError", f"No active Lifecycle Action found with token {token}")

        def heartbeat(self, group: str, hook: str, iid: str | None, token: str | None) -> None:
                self.expire()
                with self.lock:
                        _, a = self._active_action(group, hook, iid, token)
                        now = time.monotonic()
                        a.heartbeats.append(now)
                        a.expires = min(now + a.hook.heartbeat_timeout, a.deadline)

        def complete(self, group: str, hook: str, iid: str | None, token: str | None, result: str) -> None:
                self.expire()
                with self.lock:
                        m, a = self._active_action(group, hook, iid, token)
                        now = time.monotonic()
                        a.end(result, "complete", now)
                        self.log("autoscaling", f"{m.instance_id}: {hook} completed with {result}")
                        self._settle(m, now)

        def as_json(self, name: str | None = None) -> Any:
                self.expire()
                with self.lock:
                        if name is None:
                                return [g.as_json() for g in self.groups.values()]
                        g = self.groups.get(name)
                        if g is None:
                                raise ControlError(f"no group {name}", 404)
                        return g.as_json()


class AutoScalingApi(AwsQueryService):
        """The Auto Scaling actions lifeboat uses (and PutLifecycleHook, to set up with awscli)."""

        name = "autoscaling"
        namespace = AS_NS

        def __init__(self, model: AutoScaling):
                super().__init__()
                self.model = model
                self.actions = {
                        "DescribeAutoScalingInstances": self.describe_instances,
                        "DescribeLifecycleHooks": self.describe_hooks,
                        "PutLifecycleHook": self.put_hook,
                        "RecordLifecycleActionHeartbeat": self.heartbeat,
                        "CompleteLifecycleAction": self.complete,
                }
                self.read_only = {"DescribeAutoScalingInstances", "DescribeLifecycleHooks"}

        # -- parameters --

        @staticmethod
        def need(params: dict[str, str], name: str, member: str) -> str:
                v = params.get(name)
                if not v:
                        raise not_null(member)
                return v

        @staticmethod
        def hook_name(params: dict[str, str]) -> str:
                name = AutoScalingApi.need(params, "LifecycleHookName", "lifecycleHookName")
                if not HOOK_NAME_RE.fullmatch(name):
                        raise AwsError("ValidationError", f"1 validation error detected: Value '{name}' at "
                                                          "'lifecycleHookName' failed to satisfy constraint: Member must "
                                                          "satisfy regular expression pattern: [A-Za-z0-9\\-_\\/]+")
                return name

        @staticmethod
        def target(params: dict[str, str]) -> tuple[str | None, str | None]:
                iid, token = params.get("InstanceId") or None, params.get("LifecycleActionToken") or None
                if not iid and not token:
                        raise AwsError("ValidationError", "Either InstanceId or LifecycleActionToken must be specified")
                return iid, token

        @staticmethod
        def seconds(params: dict[str, str], name: str, lo: int, hi: int) -> int | None:
                raw = params.get(name)
                if raw is None:
                        return None
                try:
                        v = int(raw)
                except ValueError:
                        raise AwsError("ValidationError", f"Value '{raw}' for {name} is not an integer") from None
                if not lo <= v <= hi:
                        raise AwsError("ValidationError", f"Value {v} for {name} must be between {lo} and {hi}")
                return v

        # -- the actions --

        def describe_instances(self, params: dict[str, str]) -> list[Node]:
                ids = indexed(params, "InstanceIds.member")
                if len(ids) > MAX_IDS:
                        raise AwsError("ValidationError", f"The number of instance ids that may be passed in is {MAX_IDS}")
                self.seconds(params, "MaxRecords", 1, MAX_IDS)
                self.model.expire()
                with self.model.lock:
                        members = []
                        for g in self.model.groups.values():
                                for m in g.members.values():
                                        # Unknown ids are ignored; terminated instances drop out of the list.
                                        if m.state != "Terminated" and (not ids or m.instance_id in ids):
                                                members.append((m, self.model.store.instances[m.instance_id]))
                        return [("AutoScalingInstances", [("member", [
                                ("InstanceId", m.instance_id), ("InstanceType", inst.instance_type),
                                ("AutoScalingGroupName", m.group), ("AvailabilityZone", inst.availability_zone),
                                ("LifecycleState", m.state), ("HealthStatus", "HEALTHY"),
                                ("ProtectedFromScaleIn", False),
                        ]) for m, inst in sorted(members, key=lambda mi: mi[0].instance_id)])]

        def describe_hooks(self, params: dict[str, str]) -> list[Node]:
                group = self.need(params, "AutoScalingGroupName", "autoScalingGroupName")
                names = indexed(params, "LifecycleHookNames.member")
                if len(names) > 50:
                        raise AwsError("ValidationError", "The number of lifecycle hook names may not exceed 50")
                with self.model.lock:
                        g = self.model.group(group)
                        hooks = [h for h in g.hooks.values() if not names or h.name in names]
                        return [("LifecycleHooks", [("member", [
                                ("LifecycleHookName", h.name), ("AutoScalingGroupName", h.group),
                                ("LifecycleTransition", h.transition), ("HeartbeatTimeout", h.heartbeat_timeout),
                                ("GlobalTimeout", h.global_timeout), ("DefaultResult", h.default_result),
                        ]) for h in hooks])]

        def put_hook(self, params: dict[str, str]) -> list[Node]:
                name = self.hook_name(params)
                group = self.need(params, "AutoScalingGroupName", "autoScalingGroupName")
                transition = params.get("LifecycleTransition") or None
                if transition is not None and transition not in (TERMINATING, LAUNCHING):
                        raise AwsError("ValidationError", f"Invalid Lifecycle Transition: {transition}")
                result = params.get("DefaultResult") or None
                if result is not None and result not in RESULTS:
                        raise AwsError("ValidationError", f"Invalid default result: {result}")
                ht = self.seconds(params, "HeartbeatTimeout", 30, 7200)
                self.model.put_hook(group, name, transition, ht, result)
                return []

        def heartbeat(self, params: dict[str, str]) -> list[Node]:
                name = self.hook_name(params)
                group = self.need(params, "AutoScalingGroupName", "autoScalingGroupName")
                self.model.heartbeat(group, name, *self.target(params))
                return []

        def complete(self, params: dict[str, str]) -> list[Node]:
                name = self.hook_name(params)
                group = self.need(params, "AutoScalingGroupName", "autoScalingGroupName")
                result = self.need(params, "LifecycleActionResult", "lifecycleActionResult")
                if result not in RESULTS:
                        raise AwsError("ValidationError", f"Invalid lifecycle action result: {result}")
                self.model.complete(group, name, *self.target(params), result)
                return []
