# SPDX-License-Identifier: MIT
"""AWS's Query protocol (EC2, and the awsquery services: CloudWatch, Auto Scaling, STS): a form POST
(or GET) of Action=...&Version=... with the parameters flattened (Name.N, Name.N.Key),
signed with SigV4, answered in XML.

Here: reading parameters, filters and pagination as every Describe* action takes them,
the common error answer, the base class of a service (QueryService) and the endpoint that
dispatches a request to its service (QueryEndpoint). A service is one module with one
QueryService subclass; the endpoint serves any number of them on the one API port."""

from __future__ import annotations

import base64
import functools
import json
import re
import time
import urllib.parse
import uuid
from typing import Any, Callable

from . import xmlout
from .base import AwsError, Reply
from .config import Config
from .faults import Fault, FaultQueue, Throttle
from .sigv4 import SignatureMismatch, SigV4Verifier, credential_scope
from .xmlout import Node

XML_CONTENT_TYPE = "text/xml;charset=UTF-8"


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------

def parse_params(method: str, query: str, body: bytes) -> dict[str, str]:
        """The query string's parameters, and a POST body's on top; none if not UTF-8."""
        try:
                params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                if method == "POST":
                        params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
                params = {}
        return params


def required(params: dict[str, str], name: str) -> str:
        v = params.get(name)
        if v is None or v == "":
                raise AwsError("MissingParameter", f"The request must contain the parameter {name}")
        return v


def parse_bool(name: str, value: str) -> bool:
        if value.lower() == "true":
                return True
        if value.lower() == "false":
                return False
        raise AwsError("InvalidParameterValue",
                       f"Invalid value '{value}' for {name}. Expecting 'true' or 'false'.")


@functools.lru_cache(maxsize=4096)
def wildcard_regex(pattern: str) -> re.Pattern[str] | None:
        """The compiled form of a filter pattern, None for one without wildcards or escapes
        (plain equality). Cached: a fleet's DescribeVolumes name dozens of volume ids, each
        matched against every volume."""
        if not any(c in pattern for c in "*?\\"):
                return None
        out = []
        i = 0
        while i < len(pattern):
                c = pattern[i]
                if c == "\\" and i + 1 < len(pattern):
                        out.append(re.escape(pattern[i + 1]))
                        i += 2
                        continue
                out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
                i += 1
        return re.compile("".join(out), re.DOTALL)


def wildcard_match(pattern: str, value: str) -> bool:
        """EC2 filter matching: case-sensitive, '*' and '?' wildcards, '\\' escapes."""
        rx = wildcard_regex(pattern)
        return pattern == value if rx is None else rx.fullmatch(value) is not None


def indexed(params: dict[str, str], prefix: str) -> list[str]:
        """Values of PREFIX.1, PREFIX.2, ... in index order."""
        found = []
        rx = re.compile(re.escape(prefix) + r"\.(\d+)$")
        for k, v in params.items():
                m = rx.match(k)
                if m:
                        found.append((int(m.group(1)), v))
        return [v for _, v in sorted(found)]


def indexed_groups(params: dict[str, str], prefix: str) -> list[dict[str, str]]:
        """PREFIX.N.REST=value grouped by N: [{REST: value, ...}, ...] in index order."""
        groups: dict[int, dict[str, str]] = {}
        rx = re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)$")
        for k, v in params.items():
                m = rx.match(k)
                if m:
                        groups.setdefault(int(m.group(1)), {})[m.group(2)] = v
        return [groups[n] for n in sorted(groups)]


# --------------------------------------------------------------------------
# filters and pages
# --------------------------------------------------------------------------

class Filters:
        """Filter.N.Name / Filter.N.Value.M: AND across filters, OR across values. The
        table maps each filter name to the values an object has for it; tag:KEY filters
        work on every object with tags."""

        def __init__(self, params: dict[str, str], table: dict[str, Callable[[Any], list[str]]]):
                self.table = table
                self.filters: list[tuple[str, list[str]]] = []
                for n, group in enumerate(indexed_groups(params, "Filter"), 1):
                        name = group.get("Name")
                        if not name:
                                raise AwsError("MissingParameter", f"The request must contain the parameter Filter.{n}.Name")
                        if not name.startswith("tag:") and name not in table:
                                raise AwsError("InvalidParameterValue", f"The filter '{name}' is invalid")
                        values = [group[f"Value.{i}"] for i in sorted(int(k[6:]) for k in group if re.fullmatch(r"Value\.\d+", k))]
                        if not values:
                                raise AwsError("InvalidParameterValue", f"The filter '{name}' has no values")
                        self.filters.append((name, values))

        def values_of(self, name: str, obj: Any) -> list[str]:
                if name.startswith("tag:"):
                        key = name[4:]
                        return [obj.tags[key]] if key in obj.tags else []
                return self.table[name](obj)

        def match(self, obj: Any) -> bool:
                return all(any(wildcard_match(p, have) for p in patterns for have in self.values_of(name, obj))
                           for name, patterns in self.filters)


class Paginator:
        """MaxResults / NextToken. The token is opaque (base64 of the last id seen)."""

        def __init__(self, params: dict[str, str], action: str, lo: int, hi: int, cap: int | None,
                     with_ids: bool, ids_param: str = "volumeSet"):
                self.action = action
                self.limit: int | None = None
                self.after: str | None = None
                raw = params.get("MaxResults")
                if raw is not None:
                        if with_ids:
                                raise AwsError("InvalidParameterCombination",
                                               f"The parameter {ids_param} cannot be used with the parameter maxResults")
                        try:
                                self.limit = int(raw)
                        except ValueError:
                                raise AwsError("InvalidParameterValue",
                                               f"Invalid value '{raw}' for maxResults") from None
                        if not lo <= self.limit <= hi:
                                raise AwsError("InvalidParameterValue",
                                               f"Value ( {raw} ) for parameter maxResults is invalid. "
                                               f"Expecting a value between {lo} and {hi}.")
                if cap is not None and not with_ids:
                        self.limit = min(self.limit or cap, cap)
                token = params.get("NextToken")
                if token:
                        try:
                                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                                if decoded["a"] != action:
                                        raise ValueError
                                self.after = decoded["k"]
                        except (ValueError, KeyError, TypeError):
                                raise AwsError("InvalidPaginationToken",
                                               "The specified pagination token is not valid or is expired.") from None

        def page(self, items: list[Any], key: Callable[[Any], str]) -> tuple[list[Any], str | None]:
                items = sorted(items, key=key)
                if self.after is not None:
                        items = [i for i in items if key(i) > self.after]
                if self.limit is None or len(items) <= self.limit:
                        return items, None
                page = items[:self.limit]
                token = base64.urlsafe_b64encode(json.dumps({"a": self.action, "k": key(page[-1])}).encode())
                return page, token.decode()



# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------

def error_reply(e: AwsError, request_id: str) -> Reply:
        """EC2's error answer: the HTTP status, and Code and Message in XML."""
        return Reply(e.status, xmlout.error(e.code, e.message, request_id), XML_CONTENT_TYPE)


def throttled() -> AwsError:
        """EC2's answer to a request over the rate limit (the Code botocore retries as throttling)."""
        return AwsError("RequestLimitExceeded", "Request limit exceeded.", 503)


def server_error(status: int | None) -> AwsError:
        if status == 503:
                return AwsError("Server.Unavailable", "The server is overloaded and can't handle the request.", 503)
        return AwsError("InternalError", "An internal error has occurred", status or 500)


# --------------------------------------------------------------------------
# services and the endpoint
# --------------------------------------------------------------------------

class QueryService:
        """One service of the Query protocol. A subclass sets name (the service of the
        SigV4 credential scope: "ec2"), namespace (of its XML answers) and actions (Action ->
        method taking the parameters, returning the answer's XML nodes, raising AwsError);
        read_only names the actions that change nothing (a fault may answer them for real),
        unsigned the actions AWS takes without a signature (STS AssumeRoleWithWebIdentity).
        EC2 writes its answers and errors its own way; the other services derive from
        AwsQueryService, which writes the common form (xmlout.query_response, query_error)."""

        name = ""
        namespace = ""

        def __init__(self):
                self.actions: dict[str, Callable[[dict[str, str]], list[Node]]] = {}
                self.read_only: set[str] = set()
                self.unsigned: set[str] = set()

        def check(self, action: str, params: dict[str, str]) -> None:
                """Parameters every action of the service takes, checked before the action."""

        def call(self, action: str, params: dict[str, str]) -> list[Node]:
                fn = self.actions.get(action)
                if fn is None:
                        raise AwsError("InvalidAction", f"The action {action} is not valid for this web service.")
                if not params.get("Version"):
                        raise AwsError("MissingParameter", "The request must contain the parameter Version")
                self.check(action, params)
                return fn(params)

        def response(self, action: str, request_id: str, nodes: list[Node]) -> bytes:
                return xmlout.response(action, self.namespace, request_id, nodes)

        # What the service answers when it refuses, EC2's way unless a service says otherwise.

        def error_reply(self, e: AwsError, request_id: str) -> Reply:
                return error_reply(e, request_id)

        def throttled(self) -> AwsError:
                return AwsError("RequestLimitExceeded", "Request limit exceeded.", 503)

        def server_error(self, status: int | None) -> AwsError:
                return server_error(status)

        def done_nodes(self, action: str) -> list[Node]:
                """The answer of an action that changes something, for faults that pretend it ran."""
                return [("return", True)]


# The signature verifier speaks EC2's dialect; the awsquery services say the same things in
# theirs (codes and HTTP 403 of the Query services' common errors).
AUTH_ERRORS = {
        "AWS was not able to validate the provided access credentials":
                ("InvalidClientTokenId", "The security token included in the request is invalid.", 403),
        "The security token included in the request is invalid.":
                ("InvalidClientTokenId", "The security token included in the request is invalid.", 403),
        "The security token included in the request is expired":
                ("ExpiredToken", "The security token included in the request is expired", 403),
        "Request is missing Authentication Token":
                ("MissingAuthenticationToken", "Request is missing Authentication Token", 403),
}
BAD_SIGNATURE = ("SignatureDoesNotMatch",
                 "The request signature we calculated does not match the signature you provided. Check your "
                 "AWS Secret Access Key and signing method. Consult the service documentation for details.", 403)


class AwsQueryService(QueryService):
        """A service of botocore's "query" protocol other than EC2 (CloudWatch, Auto Scaling,
        STS): answers in <ActionResponse><ActionResult> (present even when empty: awscli needs
        it), errors in <ErrorResponse><Error> with Type, Code and Message, throttling as
        Throttling/400, and the common errors in their own codes."""

        def response(self, action: str, request_id: str, nodes: list[Node]) -> bytes:
                return xmlout.query_response(action, self.namespace, request_id, nodes)

        def error_reply(self, e: AwsError, request_id: str) -> Reply:
                code, message, status = e.code, e.message, e.status
                if isinstance(e, SignatureMismatch):
                        code, message, status = BAD_SIGNATURE
                elif code == "AuthFailure":
                        code, message, status = AUTH_ERRORS.get(message, BAD_SIGNATURE)
                elif code == "IncompleteSignature":
                        status = 403
                elif code in ("RequestExpired", "ExpiredToken"):
                        code, status = ("RequestExpired", 400) if code == "RequestExpired" else ("ExpiredToken", 403)
                return Reply(status, xmlout.query_error(code, message, request_id, self.namespace, status < 500),
                             XML_CONTENT_TYPE)

        def throttled(self) -> AwsError:
                return AwsError("Throttling", "Rate exceeded", 400)

        def server_error(self, status: int | None) -> AwsError:
                if status == 503:
                        return AwsError("ServiceUnavailable", "Service is unavailable.", 503)
                return AwsError("InternalFailure", "The request processing has failed because of an unknown error, "
                                "exception or failure.", status or 500)

        def done_nodes(self, action: str) -> list[Node]:
                return []


class QueryEndpoint:
        """Query requests on the API port. A signed request goes to the service named in its
        credential scope, an unsigned one to the service that has its Action; either falls
        back to the first service, whose signature check then answers it (a scope naming a
        service not served is an AuthFailure, no signature a MissingAuthenticationToken)."""

        def __init__(self, services: list[QueryService], verifier: SigV4Verifier, faults: FaultQueue,
                     config: Config, throttle: Throttle):
                self.services = {s.name: s for s in services}
                self.default = services[0]
                self.verifier = verifier
                self.faults = faults
                self.config = config
                self.throttle = throttle

        def service_for(self, scoped: str | None, action: str) -> QueryService:
                if scoped is not None:
                        return self.services.get(scoped, self.default)
                for s in self.services.values():
                        if action in s.actions:
                                return s
                return self.default

        def answer(self, method: str, split: urllib.parse.SplitResult, headers: Any, body: bytes,
                   entry: dict[str, Any]) -> tuple[Reply | None, bool]:
                """The reply (None: drop the connection) and whether to truncate it. Fills in the
                request log's entry: service, action, instance (the access key id), fault."""
                request_id = str(uuid.uuid4())
                params = parse_params(method, split.query, body)
                action = params.get("Action", "")
                # Logged even when the signature turns out to be bad.
                akid, scoped = credential_scope(headers.get("Authorization", ""))
                service = self.service_for(scoped, action)
                entry.update(service=service.name, action=action, instance=akid)
                if self.config.ec2_latency_ms:
                        time.sleep(self.config.ec2_latency_ms / 1000)
                try:
                        if method not in ("GET", "POST"):
                                raise AwsError("InvalidAction", f"The HTTP method {method} is not supported.")
                        # An action AWS takes unsigned is checked only when it is signed anyway.
                        if action not in service.unsigned or headers.get("Authorization") is not None:
                                self.verifier.verify(method, split.path or "/", split.query, headers.items(), body,
                                                     service.name)
                        if not action:
                                raise AwsError("MissingAction", "The request must contain the parameter Action")
                        barrier = self.faults.take(service.name, action, barrier=True)
                        if barrier:
                                # Held until the barrier's count of requests arrived, then
                                # answered (by the rate limit and the faults too) all together.
                                entry["barrier"] = "released" if barrier.gather() else "broken"
                        if not self.throttle.admit(action):
                                entry["fault"] = "token_bucket"
                                raise service.throttled()
                        fault = self.faults.take(service.name, action)
                        if fault:
                                entry["fault"] = fault.kind
                                early = self.fault_before(fault, service, action, params, request_id)
                                if early is not False:
                                        return early
                        nodes = service.call(action, params)
                        reply = Reply(200, service.response(action, request_id, nodes), XML_CONTENT_TYPE)
                        if fault and fault.after_success:
                                return self.fault_after(fault, service, reply, request_id)
                        return reply, False
                except AwsError as e:
                        return service.error_reply(e, request_id), False

        def fault_before(self, fault: Fault, service: QueryService, action: str, params: dict[str, str],
                         request_id: str) -> tuple[Reply | None, bool] | bool:
                """Applies a fault that strikes before the action; False: go on with the action."""
                kind = fault.kind
                if kind == "latency":
                        time.sleep(fault.latency_ms / 1000)
                        return False
                if kind == "throttle":
                        return service.error_reply(service.throttled(), request_id), False
                if kind == "5xx":
                        return service.error_reply(service.server_error(fault.status), request_id), False
                if kind == "drop":
                        return None, False
                if kind in ("truncate", "malformed"):
                        # What the answer would have looked like, without doing the action
                        # (read-only actions are answered for real).
                        if action in service.read_only:
                                try:
                                        body = service.response(action, request_id, service.call(action, params))
                                except AwsError as e:
                                        return service.error_reply(e, request_id), False
                        else:
                                body = service.response(action, request_id, service.done_nodes(action))
                        if kind == "truncate":
                                return Reply(200, body, XML_CONTENT_TYPE), True
                        broken = body[: len(body) * 2 // 3] + b"<<not xml&\x00>\n"
                        return Reply(200, broken, XML_CONTENT_TYPE), False
                return False    # *_after_success

        @staticmethod
        def fault_after(fault: Fault, service: QueryService, reply: Reply,
                        request_id: str) -> tuple[Reply | None, bool]:
                kind = fault.base_kind
                if kind == "latency":
                        # Done, but the answer is late: a client killed meanwhile never learns.
                        time.sleep(fault.latency_ms / 1000)
                        return reply, False
                if kind == "drop":
                        return None, False
                if kind == "truncate":
                        return reply, True
                return service.error_reply(service.server_error(fault.status), request_id), False
