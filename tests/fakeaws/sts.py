# SPDX-License-Identifier: MIT
"""STS (Query API version 2011-06-15): AssumeRoleWithWebIdentity, taken unsigned as AWS takes
it. The web identities it trusts are registered through the control API (a token, the roles it
may assume, whether it has expired); every call is recorded. The credentials it hands out are
the store's, so the SigV4 verifier accepts them until they expire."""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from .base import ACCOUNT_ID, AwsError, ControlError, iso_s, utcnow
from .config import Config
from .model import RoleCredential
from .query import AwsQueryService
from .store import Store
from .xmlout import Node

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
SESSION_NAME_RE = re.compile(r"[\w+=,.@-]{2,64}")
ROLE_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
DEFAULT_DURATION_S = 3600


@dataclass
class WebIdentity:
        """A token STS accepts: what its issuer vouches for (the subject) and the roles whose trust
        policy lets it in."""
        token: str
        role_arns: list[str]
        subject: str = "system:serviceaccount:default:lifeboat"
        issuer: str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E"
        audience: str = "sts.amazonaws.com"
        expired: bool = False

        def as_json(self) -> dict[str, Any]:
                return {"token": self.token, "role_arns": list(self.role_arns), "subject": self.subject,
                        "issuer": self.issuer, "audience": self.audience, "expired": self.expired}


@dataclass
class StsCall:
        """One AssumeRoleWithWebIdentity as it arrived, and what it got."""
        token: str              # as received, trailing white space included
        role_arn: str
        session_name: str
        duration_s: int | None
        result: str             # "ok" or the error code
        access_key_id: str | None = None
        secret_access_key: str | None = None    # so that tests can check nobody prints them
        session_token: str | None = None
        expiration: str | None = None

        def as_json(self) -> dict[str, Any]:
                return dict(self.__dict__)


class StsApi(AwsQueryService):
        """AssumeRoleWithWebIdentity, in the awsquery shapes (query.AwsQueryService)."""

        name = "sts"
        namespace = STS_NS

        def __init__(self, store: Store, config: Config):
                super().__init__()
                self.store = store
                self.config = config
                self.lock = threading.Lock()
                self.identities: dict[str, WebIdentity] = {}
                self.calls: list[StsCall] = []
                self.actions = {"AssumeRoleWithWebIdentity": self.assume_role_with_web_identity}
                self.unsigned = {"AssumeRoleWithWebIdentity"}
                self.read_only = {"AssumeRoleWithWebIdentity"}

        # -- the control API's side --

        def register(self, spec: dict[str, Any]) -> WebIdentity:
                known = {"token", "role_arns", "subject", "issuer", "audience", "expired"}
                unknown = set(spec) - known
                if unknown:
                        raise ControlError(f"unknown web identity keys: {', '.join(sorted(unknown))}")
                token = spec.get("token")
                roles = spec.get("role_arns")
                if not isinstance(token, str) or not 4 <= len(token) <= 20000:
                        raise ControlError("token must be a string of 4 to 20000 characters")
                if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and ROLE_ARN_RE.fullmatch(r)
                                                                       for r in roles):
                        raise ControlError("role_arns must be a non-empty list of role ARNs")
                ident = WebIdentity(token, list(roles), expired=bool(spec.get("expired", False)))
                for key in ("subject", "issuer", "audience"):
                        if key in spec:
                                if not isinstance(spec[key], str) or not spec[key]:
                                        raise ControlError(f"{key} must be a non-empty string")
                                setattr(ident, key, spec[key])
                with self.lock:
                        self.identities[token] = ident
                return ident

        def call_log(self) -> list[dict[str, Any]]:
                with self.lock:
                        return [c.as_json() for c in self.calls]

        # -- the action --

        def assume_role_with_web_identity(self, params: dict[str, str]) -> list[Node]:
                raw_token = params.get("WebIdentityToken", "")
                call = StsCall(raw_token, params.get("RoleArn", ""), params.get("RoleSessionName", ""), None, "")
                try:
                        nodes = self._assume(params, call)
                        call.result = "ok"
                        return nodes
                except AwsError as e:
                        call.result = e.code
                        raise
                finally:
                        with self.lock:
                                self.calls.append(call)

        @staticmethod
        def _validate(params: dict[str, str]) -> tuple[str, str, str, int | None]:
                errors = []
                role_arn = params.get("RoleArn")
                session = params.get("RoleSessionName")
                token = params.get("WebIdentityToken")
                for value, member, lo, hi in ((role_arn, "roleArn", 20, 2048), (session, "roleSessionName", 2, 64),
                                              (token, "webIdentityToken", 4, 20000)):
                        if value is None:
                                errors.append(f"Value null at '{member}' failed to satisfy constraint: "
                                              "Member must not be null")
                        elif not lo <= len(value) <= hi:
                                errors.append(f"Value at '{member}' failed to satisfy constraint: Member must have "
                                              f"length {'greater than or equal to ' + str(lo) if len(value) < lo else 'less than or equal to ' + str(hi)}")
                if session is not None and 2 <= len(session) <= 64 and not SESSION_NAME_RE.fullmatch(session):
                        errors.append(f"Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member "
                                      r"must satisfy regular expression pattern: [\w+=,.@-]*")
                duration = None
                if "DurationSeconds" in params:
                        try:
                                duration = int(params["DurationSeconds"])
                        except ValueError:
                                duration = -1
                        if not 900 <= duration <= 43200:
                                errors.append(f"Value '{params['DurationSeconds']}' at 'durationSeconds' failed to "
                                              "satisfy constraint: Member must have value between 900 and 43200")
                if errors:
                        n = len(errors)
                        raise AwsError("ValidationError", f"{n} validation error{'s' if n > 1 else ''} detected: "
                                       + "; ".join(errors))
                return role_arn, session, token, duration   # type: ignore[return-value]

        def _assume(self, params: dict[str, str], call: StsCall) -> list[Node]:
                role_arn, session, token, duration = self._validate(params)
                call.duration_s = duration
                # A token file ending in a line break works with AWS (EKS tokens do).
                with self.lock:
                        ident = self.identities.get(token.rstrip("\r\n"))
                if ident is None:
                        raise AwsError("InvalidIdentityToken",
                                       "Couldn't retrieve verification key from your identity provider,  please "
                                       "reference AssumeRoleWithWebIdentity documentation for requirements")
                now = utcnow()
                if ident.expired:
                        issued = int(now.timestamp()) - 7200
                        raise AwsError("ExpiredTokenException", f"Token expired: current date/time {int(now.timestamp())} "
                                       f"must be before the expiration date/time {issued + 3600}")
                if role_arn not in ident.role_arns:
                        raise AwsError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)

                ttl = self.config.sts_credential_ttl_s or duration or DEFAULT_DURATION_S
                cred = RoleCredential.issue(None, ttl)   # type: ignore[arg-type]
                with self.store.lock:
                        self.store.credentials[cred.access_key_id] = cred
                call.access_key_id = cred.access_key_id
                call.secret_access_key = cred.secret_access_key
                call.session_token = cred.token
                call.expiration = iso_s(cred.expiration)   # type: ignore[arg-type]
                m = ROLE_ARN_RE.fullmatch(role_arn)
                account, role_name = (m.group(1), m.group(2)) if m else (ACCOUNT_ID, "role")
                role_id = "AROA" + secrets.token_hex(8).upper()[:17]
                return [
                        ("SubjectFromWebIdentityToken", ident.subject),
                        ("Audience", ident.audience),
                        ("AssumedRoleUser", [
                                ("Arn", f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"),
                                ("AssumedRoleId", f"{role_id}:{session}"),
                        ]),
                        ("Credentials", [
                                ("SessionToken", cred.token),
                                ("SecretAccessKey", cred.secret_access_key),
                                ("Expiration", iso_s(cred.expiration)),   # type: ignore[arg-type]
                                ("AccessKeyId", cred.access_key_id),
                        ]),
                        ("Provider", ident.issuer.removeprefix("https://")),
                ]
