# SPDX-License-Identifier: MIT
"""Fault injection: the faults tests queue (POST /_fake/faults), each consumed by the
next requests it matches, and EC2's request rate limit, token buckets per action
(POST /_fake/throttle). What a fault does to an answer is up to the protocol that
serves it (imds.py, query.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .base import ControlError


@dataclass
class Fault:
        id: int
        action: str             # a Query Action, "*" (any Query action), "imds" or "container"
        kind: str
        remaining: int          # -1: forever
        latency_ms: int = 1000
        status: int | None = None
        path: str | None = None # imds and container only: substring of the request path
        timeout_ms: int = 30000 # barrier only: release the requests gathered so far after this
        # barrier only: the requests that take this fault wait for each other here (shared by
        # the copies take() hands out).
        gate: threading.Barrier | None = field(default=None, repr=False, compare=False)

        KINDS = ("throttle", "5xx", "latency", "drop", "truncate", "malformed",
                 "5xx_after_success", "drop_after_success", "truncate_after_success",
                 "latency_after_success", "barrier")

        @property
        def after_success(self) -> bool:
                return self.kind.endswith("_after_success")

        @property
        def base_kind(self) -> str:
                return self.kind.removesuffix("_after_success")

        def as_json(self) -> dict[str, Any]:
                d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "gate"}
                if self.gate is not None:
                        d["waiting"] = self.gate.n_waiting
                return d

        def gather(self) -> bool:
                """barrier: waits until count requests took this fault (all are then released
                together). False when timeout_ms passed first: those gathered go on anyway."""
                assert self.gate is not None
                try:
                        self.gate.wait(self.timeout_ms / 1000)
                        return True
                except threading.BrokenBarrierError:
                        return False


class FaultQueue:
        """Faults injected by tests, consumed by the next matching requests."""

        def __init__(self):
                self._lock = threading.Lock()
                self._faults: list[Fault] = []
                self._next_id = 1

        def add(self, spec: dict[str, Any]) -> Fault:
                action = spec.get("action")
                kind = spec.get("kind")
                if not isinstance(action, str) or not action:
                        raise ControlError("fault needs an action (Query Action, '*', 'imds' or 'container')")
                if kind not in Fault.KINDS:
                        raise ControlError(f"fault kind must be one of {', '.join(Fault.KINDS)}")
                count = spec.get("count", 1)
                if not isinstance(count, int) or count == 0 or count < -1:
                        raise ControlError("count must be a positive integer, or -1 for forever")
                status = spec.get("status")
                if status is not None and (not isinstance(status, int) or not 500 <= status <= 599):
                        raise ControlError("status must be a 5xx code")
                latency = spec.get("latency_ms", 1000)
                if not isinstance(latency, int) or latency < 0:
                        raise ControlError("latency_ms must be a non-negative integer")
                path = spec.get("path")
                timeout = spec.get("timeout_ms", 30000)
                if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
                        raise ControlError("timeout_ms must be a positive integer")
                unknown = set(spec) - {"action", "kind", "count", "status", "latency_ms", "path", "timeout_ms"}
                if unknown:
                        raise ControlError(f"unknown fault keys: {', '.join(sorted(unknown))}")
                gate = None
                if kind == "barrier":
                        # The requests gathered are those of one fault: a count of them, once.
                        if action in ("imds", "container") or count < 1:
                                raise ControlError("a barrier needs an EC2 action (or '*') and a count of requests "
                                                   "to gather (not -1)")
                        gate = threading.Barrier(count)
                with self._lock:
                        f = Fault(self._next_id, action, kind, count, latency, status, path, timeout, gate)
                        self._next_id += 1
                        self._faults.append(f)
                        return f

        def take(self, service: str, action: str, barrier: bool = False) -> Fault | None:
                """The first fault matching this request, with its count consumed: a barrier with
                barrier=True, any other kind without."""
                with self._lock:
                        for f in self._faults:
                                if (f.kind == "barrier") != barrier:
                                        continue
                                if service in ("imds", "container"):
                                        if f.action != service or (f.path and f.path not in action):
                                                continue
                                elif f.action not in ("*", action):
                                        continue
                                if f.remaining > 0:
                                        f.remaining -= 1
                                if f.remaining == 0:
                                        self._faults.remove(f)
                                return dataclasses.replace(f)
                return None

        def list(self) -> list[dict[str, Any]]:
                with self._lock:
                        return [f.as_json() for f in self._faults]

        def reset(self) -> None:
                with self._lock:
                        self._faults.clear()


# --------------------------------------------------------------------------
# EC2's request rate limit
# --------------------------------------------------------------------------

@dataclass
class Bucket:
        """One action's token bucket: holds up to capacity tokens, refilled continuously at
        refill_per_s; a request takes one, and is throttled when none is left."""
        capacity: int
        refill_per_s: float
        tokens: float
        stamp: float                    # time.monotonic() of the last refill
        allowed: int = 0
        throttled: int = 0

        def admit(self, now: float) -> bool:
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill_per_s)
                self.stamp = now
                if self.tokens >= 1:
                        self.tokens -= 1
                        self.allowed += 1
                        return True
                self.throttled += 1
                return False


class Throttle:
        """EC2's request rate limiting (POST /_fake/throttle): the token bucket algorithm, one
        bucket per API action, as EC2 evaluates each action on its own. A rule names an action
        or "*", which gives every action without a rule of its own a bucket of that size. A
        bucket starts full. A request without a token is answered RequestLimitExceeded (503)
        and takes nothing (query.py)."""

        def __init__(self):
                self._lock = threading.Lock()
                self._rules: dict[str, tuple[int, float]] = {}
                self._buckets: dict[str, Bucket] = {}

        def set(self, spec: dict[str, Any]) -> dict[str, Any]:
                unknown = set(spec) - {"action", "capacity", "refill_per_s"}
                if unknown:
                        raise ControlError(f"unknown throttle keys: {', '.join(sorted(unknown))}")
                action = spec.get("action")
                if not isinstance(action, str) or not action or action in ("imds", "container"):
                        raise ControlError("throttle needs an action (an EC2 Action or '*')")
                capacity = spec.get("capacity")
                if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
                        raise ControlError("capacity must be a positive integer (tokens)")
                refill = spec.get("refill_per_s")
                if not isinstance(refill, (int, float)) or isinstance(refill, bool) or refill < 0:
                        raise ControlError("refill_per_s must be a non-negative number (tokens per second)")
                with self._lock:
                        self._rules[action] = (capacity, float(refill))
                        # The new rule applies from now on, to full buckets.
                        for name in list(self._buckets):
                                if name == action or action == "*" and name not in self._rules:
                                        del self._buckets[name]
                return {"action": action, "capacity": capacity, "refill_per_s": float(refill)}

        def admit(self, action: str) -> bool:
                """Takes a token of the action's bucket; False: throttle this request."""
                with self._lock:
                        rule = self._rules.get(action) or self._rules.get("*")
                        if rule is None:
                                return True
                        now = time.monotonic()
                        bucket = self._buckets.get(action)
                        if bucket is None:
                                bucket = self._buckets[action] = Bucket(rule[0], rule[1], float(rule[0]), now)
                        return bucket.admit(now)

        def list(self) -> dict[str, Any]:
                with self._lock:
                        return {"rules": [{"action": a, "capacity": c, "refill_per_s": r}
                                          for a, (c, r) in self._rules.items()],
                                "buckets": {a: {"tokens": round(b.tokens, 3), "allowed": b.allowed,
                                                "throttled": b.throttled}
                                            for a, b in self._buckets.items()}}

        def reset(self) -> None:
                with self._lock:
                        self._rules.clear()
                        self._buckets.clear()
