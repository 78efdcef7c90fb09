# SPDX-License-Identifier: MIT
"""CloudWatch (Query API version 2010-08-01, SigV4 service "monitoring"): PutMetricData,
validated the way CloudWatch validates it, with its answer and error documents
(ErrorResponse/Error with Type, Code, Message). The datapoints it takes are recorded for the
control API (/_fake/metrics). JSON 1.0 and CBOR, which newer SDKs speak to CloudWatch, are
not served: Debian's awscli 2.9.19 and lifeboat speak the Query form."""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from typing import Any

from .base import AwsError, iso_ms, utcnow
from .query import AwsQueryService, indexed, indexed_groups
from .xmlout import Node, query_response

CLOUDWATCH_NS = "http://monitoring.amazonaws.com/doc/2010-08-01/"
MAX_DATUMS = 1000
MAX_DIMENSIONS = 30
UNITS = ("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
         "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
         "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
         "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
         "Count/Second", "None")
NAMESPACE_RE = re.compile(r"[A-Za-z0-9 ._/#:-]{1,255}")
PAST = dt.timedelta(weeks=2)
FUTURE = dt.timedelta(hours=2)

def invalid_value(name: str, value: str) -> AwsError:
        return AwsError("InvalidParameterValue", f"The value {value} for parameter {name} is invalid.")


def parse_time(name: str, text: str) -> dt.datetime:
        """ISO 8601 as the SDKs send it (2024-05-01T12:00:00Z, with or without fraction, or an
        offset); a time without a zone is UTC."""
        try:
                t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
                raise invalid_value(name, text) from None
        return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def parse_number(name: str, text: str) -> float:
        try:
                v = float(text)
        except ValueError:
                raise invalid_value(name, text) from None
        if not math.isfinite(v):
                raise invalid_value(name, text)
        return v


class CloudWatchApi(AwsQueryService):
        """PutMetricData, and what it took (datapoints(), reset())."""

        name = "monitoring"
        namespace = CLOUDWATCH_NS

        def __init__(self):
                super().__init__()
                self.actions = {"PutMetricData": self.put_metric_data}
                self.lock = threading.Lock()
                self.taken: list[dict[str, Any]] = []

        # -- the protocol's answers --

        def response(self, action: str, request_id: str, nodes: list[Node]) -> bytes:
                # PutMetricData has no output: its answer is the request id alone.
                return query_response(action, self.namespace, request_id, None)

        def server_error(self, status: int | None) -> AwsError:
                if status == 503:
                        return AwsError("ServiceUnavailable", "Service is unavailable.", 503)
                return AwsError("InternalServiceError", "Internal service failure.", status or 500)

        # -- PutMetricData --

        def put_metric_data(self, params: dict[str, str]) -> list[Node]:
                ns = params.get("Namespace")
                if not ns:
                        raise AwsError("MissingParameter", "The parameter Namespace is required.")
                if ns.startswith("AWS/") or ns.startswith(":") or not NAMESPACE_RE.fullmatch(ns):
                        raise invalid_value("Namespace", ns)
                members = indexed_groups(params, "MetricData.member")
                if not members:
                        raise AwsError("MissingParameter", "The parameter MetricData is required.")
                if len(members) > MAX_DATUMS:
                        raise AwsError("InvalidParameterValue",
                                       f"The collection MetricData must not have a size greater than {MAX_DATUMS}.")
                now = utcnow()
                missing: list[str] = []
                data = [self.datum(f"MetricData.member.{n}", m, now, missing) for n, m in enumerate(members, 1)]
                if missing:
                        # CloudWatch names every missing parameter at once, one per line.
                        raise AwsError("MissingParameter", "\n".join(missing))
                with self.lock:
                        # The request is taken whole or not at all.
                        for d in data:
                                d.update(namespace=ns, received_at=iso_ms(now))
                                self.taken.append(d)
                return []

        def datum(self, name: str, m: dict[str, str], now: dt.datetime, missing: list[str]) -> dict[str, Any]:
                metric = m.get("MetricName")
                if not metric:
                        missing.append(f"The parameter {name}.MetricName is required.")
                elif len(metric) > 255:
                        raise invalid_value(f"{name}.MetricName", metric)
                dims = self.dimensions(name, m, missing)

                value = m.get("Value")
                stats = {k.split(".", 1)[1]: v for k, v in m.items() if k.startswith("StatisticValues.")}
                values = indexed(m, "Values.member")
                if value is not None and stats:
                        raise AwsError("InvalidParameterCombination",
                                       f"The parameters {name}.Value and {name}.StatisticValues are mutually "
                                       "exclusive and you have specified both.")
                if value is None and not stats and not values:
                        raise AwsError("InvalidParameterCombination",
                                       f"At least one of the parameters {name}.Value and {name}.StatisticValues "
                                       "must be specified.")
                unit = m.get("Unit")
                if unit is not None and unit not in UNITS:
                        raise AwsError("InvalidParameterValue",
                                       f"The parameter {name}.Unit must be a value in the set [ {', '.join(UNITS)} ].")
                stamp = m.get("Timestamp")
                if stamp is not None:
                        t = parse_time(f"{name}.Timestamp", stamp)
                        if t < now - PAST:
                                raise AwsError("InvalidParameterValue",
                                               f"The parameter {name}.Timestamp must specify a time within the past "
                                               "two weeks.")
                        if t > now + FUTURE:
                                raise AwsError("InvalidParameterValue",
                                               f"The parameter {name}.Timestamp must specify a time no more than two "
                                               "hours in the future.")
                resolution = m.get("StorageResolution", "60")
                if resolution not in ("1", "60"):
                        raise invalid_value(f"{name}.StorageResolution", resolution)
                return {
                        "metric_name": metric,
                        "value": parse_number(f"{name}.Value", value) if value is not None else None,
                        "statistic_values": {k: parse_number(f"{name}.StatisticValues.{k}", v)
                                             for k, v in stats.items()} or None,
                        "values": [parse_number(f"{name}.Values", v) for v in values] or None,
                        "unit": unit,
                        "timestamp": stamp,
                        "dimensions": dims,
                        "storage_resolution": int(resolution),
                }

        @staticmethod
        def dimensions(name: str, m: dict[str, str], missing: list[str]) -> dict[str, str]:
                groups = indexed_groups({k: v for k, v in m.items() if k.startswith("Dimensions.member.")},
                                        "Dimensions.member")
                if len(groups) > MAX_DIMENSIONS:
                        raise AwsError("InvalidParameterValue",
                                       f"The collection {name}.Dimensions must not have a size greater than "
                                       f"{MAX_DIMENSIONS}.")
                dims: dict[str, str] = {}
                for i, g in enumerate(groups, 1):
                        for part in ("Name", "Value"):
                                if not g.get(part):
                                        missing.append(f"The parameter {name}.Dimensions.member.{i}.{part} is required.")
                        key, value = g.get("Name", ""), g.get("Value", "")
                        if len(key) > 255:
                                raise invalid_value(f"{name}.Dimensions.member.{i}.Name", key)
                        if len(value) > 1024:
                                raise invalid_value(f"{name}.Dimensions.member.{i}.Value", value)
                        if key and key in dims:
                                raise AwsError("InvalidParameterValue",
                                               "No metric may specify the same dimension name twice.")
                        if key:
                                dims[key] = value
                return dims

        # -- what it took --

        def datapoints(self, namespace: str | None = None) -> list[dict[str, Any]]:
                with self.lock:
                        return [dict(d) for d in self.taken if namespace is None or d["namespace"] == namespace]

        def reset(self) -> None:
                with self.lock:
                        self.taken.clear()
