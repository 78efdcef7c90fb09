# SPDX-License-Identifier: MIT
"""AWS Signature Version 4, checked the way AWS checks it, from the request as received."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import urllib.parse
from typing import Any, Callable

from .base import AwsError, utcnow

MAX_CLOCK_SKEW_S = 300
CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/([^,\s]*)")


class SignatureMismatch(AwsError):
        """A known key, but the signature is not the one it makes: EC2 says AuthFailure like for
        an unknown key; the other Query services say SignatureDoesNotMatch."""


def credential_scope(authorization: str) -> tuple[str | None, str | None]:
        """The access key id and the service name in a SigV4 Authorization header's
        credential scope (None where missing), read before the signature is checked:
        to log the request and to pick the service that answers it."""
        m = CREDENTIAL_RE.search(authorization)
        if not m:
                return None, None
        scope = m.group(2).split("/")
        return m.group(1), scope[2] if len(scope) > 2 else None


class SigV4Verifier:
        """Checks the signature of a request to one of the services served."""

        AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.+)$", re.DOTALL)

        def __init__(self, credentials: Callable[[str], Any], region: str):
                """credentials: access key id -> its credential (secret_access_key, token,
                expired(now)), or None when unknown."""
                self.credentials = credentials
                self.region = region

        def verify(self, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]],
                   body: bytes, service: str) -> Any:
                """The credential that signed the request for this service; AwsError if none did."""
                hdrs: dict[str, list[str]] = {}
                for name, value in headers:
                        hdrs.setdefault(name.lower(), []).append(value)
                auth = (hdrs.get("authorization") or [None])[0]
                if auth is None:
                        raise AwsError("MissingAuthenticationToken",
                                       "Request is missing Authentication Token", 401)
                m = self.AUTH_RE.match(auth.strip())
                if not m:
                        raise AwsError("IncompleteSignature",
                                       "Authorization header requires the AWS4-HMAC-SHA256 algorithm", 400)
                fields = {}
                for part in m.group(1).split(","):
                        k, sep, v = part.strip().partition("=")
                        if sep:
                                fields[k] = v
                for k in ("Credential", "SignedHeaders", "Signature"):
                        if k not in fields:
                                raise AwsError("IncompleteSignature",
                                               f"Authorization header requires '{k}' parameter.", 400)
                scope = fields["Credential"].split("/")
                if len(scope) != 5 or scope[4] != "aws4_request":
                        raise AwsError("IncompleteSignature", "Credential is not a valid scope.", 400)
                akid, date, region, scoped_service, _ = scope
                signed = fields["SignedHeaders"].split(";")
                if "host" not in signed or "x-amz-date" not in signed:
                        raise AwsError("AuthFailure", "SignedHeaders must include host and x-amz-date", 401)
                amz_date = (hdrs.get("x-amz-date") or [""])[0].strip()
                try:
                        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
                except ValueError:
                        raise AwsError("AuthFailure", "X-Amz-Date is missing or malformed", 401) from None
                if abs((utcnow() - when).total_seconds()) > MAX_CLOCK_SKEW_S:
                        raise AwsError("RequestExpired", "Request has expired.", 400)

                cred = self.credentials(akid)
                if cred is None:
                        raise AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
                if region != self.region or scoped_service != service or date != amz_date[:8]:
                        raise AwsError("AuthFailure",
                                       f"Credential should be scoped to a valid region, service and date "
                                       f"(expected {amz_date[:8]}/{self.region}/{service}).", 401)

                expected = self.signature(cred.secret_access_key, method, raw_path, raw_query, hdrs,
                                          signed, body, amz_date, "/".join(scope[1:]))
                if not hmac.compare_digest(expected, fields["Signature"]):
                        raise SignatureMismatch("AuthFailure", "AWS was not able to validate the provided access credentials",
                                                401)

                token = (hdrs.get("x-amz-security-token") or [None])[0]
                if cred.token is not None:
                        if token is None or not hmac.compare_digest(token.strip(), cred.token):
                                raise AwsError("AuthFailure", "The security token included in the request is invalid.", 401)
                        if cred.expired(utcnow()):
                                raise AwsError("ExpiredToken", "The security token included in the request is expired", 400)
                elif token is not None:
                        raise AwsError("AuthFailure", "The security token included in the request is invalid.", 401)
                return cred

        def signature(self, secret: str, method: str, raw_path: str, raw_query: str,
                      hdrs: dict[str, list[str]], signed: list[str], body: bytes, amz_date: str,
                      scope: str) -> str:
                canonical = "\n".join([
                        method,
                        self.canonical_uri(raw_path),
                        self.canonical_query(raw_query),
                        "".join(f"{name}:{self.canonical_header_value(hdrs.get(name, []))}\n" for name in signed),
                        ";".join(signed),
                        hashlib.sha256(body).hexdigest(),
                ])
                to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                     hashlib.sha256(canonical.encode()).hexdigest()])
                date, region, service, term = scope.split("/")
                key = ("AWS4" + secret).encode()
                for part in (date, region, service, term):
                        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

        @staticmethod
        def canonical_uri(raw_path: str) -> str:
                # Non-S3 services encode each (already encoded) path segment once more.
                return urllib.parse.quote(raw_path or "/", safe="/~")

        @staticmethod
        def canonical_query(raw_query: str) -> str:
                pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
                enc = [(urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in pairs]
                return "&".join(f"{k}={v}" for k, v in sorted(enc))

        @staticmethod
        def canonical_header_value(values: list[str]) -> str:
                return ",".join(" ".join(v.strip().split()) for v in values)
