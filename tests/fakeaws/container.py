# SPDX-License-Identifier: MIT
"""The container credentials endpoint, on a listener of its own as on a real host (the ECS agent
at 169.254.170.2, the EKS Pod Identity Agent at 169.254.170.23): a GET of a registered path
answers the role's temporary credentials as JSON, the way the ECS agent writes them (RoleArn,
AccessKeyId, SecretAccessKey, Token, Expiration). A path registered with a token wants it,
verbatim, in the Authorization header (the Pod Identity Agent's way): none is 400, another one
403. An unknown path is the ECS agent's 400 InvalidIdInRequest. Credentials are issued into the
store (so the SigV4 verifier accepts them) and handed out again until 5 minutes before they
expire, as the agents do. Faults with action "container" apply here."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .base import ACCOUNT_ID, ControlError, Reply, iso_s, utcnow
from .config import Config
from .faults import FaultQueue
from .model import RoleCredential
from .store import Store

CREDENTIAL_REFRESH_S = 300


@dataclass
class ContainerRole:
        path: str
        token: str | None
        role_arn: str
        credential: RoleCredential | None = None
        served: list[str] = field(default_factory=list)     # access key ids handed out, in order

        def as_json(self) -> dict[str, Any]:
                return {"path": self.path, "token": self.token, "role_arn": self.role_arn, "served": list(self.served)}


def json_error(status: int, code: str, message: str) -> Reply:
        """The ECS agent's error answer."""
        return Reply(status, json.dumps({"code": code, "message": message}).encode(), "application/json")


def text_error(status: int, message: str) -> Reply:
        """The Pod Identity Agent's (Go's http.Error)."""
        return Reply(status, (message + "\n").encode(), "text/plain; charset=utf-8")


class ContainerService:
        def __init__(self, store: Store, config: Config, faults: FaultQueue):
                self.store = store
                self.config = config
                self.faults = faults
                self.lock = threading.Lock()
                self.roles: dict[str, ContainerRole] = {}

        def register(self, spec: dict[str, Any]) -> ContainerRole:
                unknown = set(spec) - {"path", "token", "role_arn"}
                if unknown:
                        raise ControlError(f"unknown container keys: {', '.join(sorted(unknown))}")
                path = spec.get("path") or f"/v2/credentials/{uuid.uuid4()}"
                token = spec.get("token")
                if not isinstance(path, str) or not path.startswith("/") or "?" in path:
                        raise ControlError("path must be an absolute path without a query")
                if token is not None and (not isinstance(token, str) or not token):
                        raise ControlError("token must be a non-empty string or null")
                role_arn = spec.get("role_arn") or f"arn:aws:iam::{ACCOUNT_ID}:role/lifeboat-task-role"
                if not isinstance(role_arn, str):
                        raise ControlError("role_arn must be a string")
                role = ContainerRole(path, token, role_arn)
                with self.lock:
                        self.roles[path] = role
                return role

        def list(self) -> list[dict[str, Any]]:
                with self.lock:
                        return [r.as_json() for r in self.roles.values()]

        def answer(self, method: str, path: str, headers: Any, entry: dict[str, Any]) -> tuple[Reply | None, bool]:
                """The reply (None: drop the connection) and whether to truncate it."""
                entry.update(action=path)
                fault = self.faults.take("container", path)
                if fault:
                        entry["fault"] = fault.kind
                        kind = fault.base_kind
                        if kind == "latency":
                                time.sleep(fault.latency_ms / 1000)
                        elif kind == "throttle":
                                return text_error(429, "Too Many Requests. rate exceeded"), False
                        elif kind == "5xx":
                                return json_error(fault.status or 500, "InternalServerError", "Internal server error"), False
                        elif kind == "drop":
                                return None, False
                reply = self.handle(method, path, headers, entry)
                if fault and fault.base_kind == "malformed" and reply.status == 200:
                        reply.body = reply.body[: len(reply.body) // 2] + b'"\x00}{'
                return reply, bool(fault and fault.base_kind == "truncate")

        def handle(self, method: str, path: str, headers: Any, entry: dict[str, Any]) -> Reply:
                if method != "GET":
                        return text_error(405, "Method Not Allowed")
                with self.lock:
                        role = self.roles.get(path)
                if role is None:
                        return json_error(400, "InvalidIdInRequest", "CredentialsV2Request: ID not found")
                if role.token is not None:
                        sent = headers.get("Authorization")
                        if not sent:
                                return text_error(400, "Service account token cannot be empty")
                        if sent != role.token:
                                return text_error(403, "Access Denied. the service account token is not valid")
                cred = self.credential(role)
                entry["instance"] = cred.access_key_id
                body = json.dumps({"RoleArn": role.role_arn, "AccessKeyId": cred.access_key_id,
                                   "SecretAccessKey": cred.secret_access_key, "Token": cred.token,
                                   "Expiration": iso_s(cred.expiration)})   # type: ignore[arg-type]
                return Reply(200, body.encode(), "application/json")

        def credential(self, role: ContainerRole) -> RoleCredential:
                """The role's current credentials; new ones shortly before they expire."""
                with self.lock:
                        c = role.credential
                        now = utcnow()
                        if c is None or (c.expiration - now).total_seconds() <= CREDENTIAL_REFRESH_S:   # type: ignore[operator]
                                c = RoleCredential.issue(None, self.config.container_credential_ttl_s)   # type: ignore[arg-type]
                                role.credential = c
                                with self.store.lock:
                                        self.store.credentials[c.access_key_id] = c
                        role.served.append(c.access_key_id)
                        return c
