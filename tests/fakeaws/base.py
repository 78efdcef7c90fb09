# SPDX-License-Identifier: MIT
"""What every part of the fake needs: the account's constants, AWS's time formats, ids,
the log, the two kinds of error and the answer a service hands to the HTTP layer."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

ACCOUNT_ID = "123456789012"
STATIC_ACCESS_KEY = "AKIDLIFEBOATTEST"
STATIC_SECRET_KEY = "lifeboat/test/secret/key/0123456789abcdef"
ROLE_NAME = "lifeboat-role"
GIB = 1 << 30
SECTOR = 512
ROOT_DEVICE = "/dev/xvda"
ROOT_SIZE_GIB = 8


def utcnow() -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


def iso_ms(t: dt.datetime) -> str:
        """EC2's timestamp format: 2026-01-02T03:04:05.000Z."""
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def iso_s(t: dt.datetime) -> str:
        """IMDS's timestamp format: 2026-01-02T03:04:05Z."""
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str) -> str:
        """Ids look like real ones: vol-/i- followed by 17 hex digits."""
        return prefix + "-" + secrets.token_hex(9)[:17]


class Logger:
        """Line-oriented log file shared by all threads."""

        def __init__(self, path: Path):
                self._f = open(path, "a", buffering=1, encoding="utf-8")
                self._lock = threading.Lock()

        def __call__(self, what: str, msg: str) -> None:
                line = f"{iso_ms(utcnow())} [{what}] {msg}\n"
                with self._lock:
                        self._f.write(line)

        def close(self) -> None:
                with self._lock:
                        self._f.close()


class AwsError(Exception):
        """An error answer of an AWS API: HTTP status, Code and Message."""

        def __init__(self, code: str, message: str, status: int = 400):
                super().__init__(f"{code}: {message}")
                self.code = code
                self.message = message
                self.status = status


class ControlError(Exception):
        """A bad request to the /_fake control API."""

        def __init__(self, message: str, status: int = 400):
                super().__init__(message)
                self.status = status


@dataclass
class Reply:
        """An HTTP answer, as a service hands it to the server."""
        status: int
        body: bytes
        content_type: str = "text/plain"
        headers: dict[str, str] = field(default_factory=dict)
