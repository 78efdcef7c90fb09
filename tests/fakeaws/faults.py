# SPDX-License-Identifier: MIT
"""Fault injection: the faults tests queue (POST /_fake/faults), each consumed by the
next requests it matches. What a fault does to an answer is up to the protocol that
serves it (imds.py, query.py)."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
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

        KINDS = ("throttle", "5xx", "latency", "drop", "truncate", "malformed",
                 "5xx_after_success", "drop_after_success", "truncate_after_success")

        @property
        def after_success(self) -> bool:
                return self.kind.endswith("_after_success")

        @property
        def base_kind(self) -> str:
                return self.kind.removesuffix("_after_success")

        def as_json(self) -> dict[str, Any]:
                return dataclasses.asdict(self)


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
                unknown = set(spec) - {"action", "kind", "count", "status", "latency_ms", "path"}
                if unknown:
                        raise ControlError(f"unknown fault keys: {', '.join(sorted(unknown))}")
                with self._lock:
                        f = Fault(self._next_id, action, kind, count, latency, status, path)
                        self._next_id += 1
                        self._faults.append(f)
                        return f

        def take(self, service: str, action: str) -> Fault | None:
                """The first fault matching this request, with its count consumed."""
                with self._lock:
                        for f in self._faults:
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
