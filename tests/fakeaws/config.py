# SPDX-License-Identifier: MIT
"""The fake's settings that tests change at run time (POST /_fake/config): how long
attaching, detaching, snapshots and new volumes take, latency, IMDS up or down, caps on
tokens and pages, snapshots made to fail."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .base import ControlError


@dataclass
class Config:
        attach_delay_ms: int = 200
        detach_delay_ms: int = 200
        ec2_latency_ms: int = 0
        imds_latency_ms: int = 0
        imds_mode: str = "up"                  # up | down | hang | 500
        stuck_attach: list[str] = field(default_factory=list)
        token_ttl_max: int | None = None       # cap on IMDS token lifetime (s)
        credential_ttl_s: int = 21600          # lifetime of role credentials
        max_results_cap: int | None = None     # page size cap of Describe*
        snapshot_delay_ms: int = 1000          # CreateSnapshot: pending this long, then completed
        volume_create_delay_ms: int = 200      # CreateVolume: creating this long, then available
        failing_snapshots: list[str] = field(default_factory=list)   # volumes whose snapshots end in error
        sts_credential_ttl_s: int | None = None   # lifetime of STS credentials (None: DurationSeconds or 3600)
        container_credential_ttl_s: int = 21600   # lifetime of container credentials

        INT_KEYS = ("attach_delay_ms", "detach_delay_ms", "ec2_latency_ms", "imds_latency_ms",
                    "token_ttl_max", "credential_ttl_s", "max_results_cap", "snapshot_delay_ms",
                    "volume_create_delay_ms", "sts_credential_ttl_s", "container_credential_ttl_s")
        IMDS_MODES = ("up", "down", "hang", "500")

        def update(self, changes: dict[str, Any]) -> None:
                """Validates everything first, so a bad key changes nothing."""
                checked = {}
                for key, value in changes.items():
                        if key in self.INT_KEYS:
                                nullable = key in ("token_ttl_max", "max_results_cap", "sts_credential_ttl_s")
                                if value is None and nullable:
                                        checked[key] = None
                                        continue
                                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                                        raise ControlError(f"{key} must be a non-negative integer")
                                if key in ("token_ttl_max", "credential_ttl_s", "max_results_cap", "sts_credential_ttl_s",
                                           "container_credential_ttl_s") and value < 1:
                                        raise ControlError(f"{key} must be >= 1")
                                checked[key] = value
                        elif key == "imds_mode":
                                if value not in self.IMDS_MODES:
                                        raise ControlError(f"imds_mode must be one of {', '.join(self.IMDS_MODES)}")
                                checked[key] = value
                        elif key in ("stuck_attach", "failing_snapshots"):
                                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                                        raise ControlError(f"{key} must be a list of volume ids")
                                checked[key] = list(value)
                        else:
                                raise ControlError(f"unknown config key {key!r}")
                for key, value in checked.items():
                        setattr(self, key, value)

        def as_json(self) -> dict[str, Any]:
                return {k: getattr(self, k) for k in (f.name for f in dataclasses.fields(self))}
