# SPDX-License-Identifier: MIT
"""Where things are, the fake's static credentials, and how a helper fails: pytest.fail
inside pytest, Failure outside it (the demo and bench drivers)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
SOURCE_DIR = Path(os.environ.get("LIFEBOAT_SOURCE_DIR") or TESTS_DIR.parent)
FAKEAWS = TESTS_DIR / "fakeaws"         # the package, run as python3 tests/fakeaws
FAKEFLUENTD = TESTS_DIR / "fakefluentd.py"
PYTHON = "/usr/bin/python3"
AWSCLI = "/usr/bin/aws"         # Debian's awscli, not whatever "aws" comes first in PATH

STATIC_ACCESS_KEY = "AKIDLIFEBOATTEST"
STATIC_SECRET_KEY = "lifeboat/test/secret/key/0123456789abcdef"
GIB = 1 << 30


class Failure(RuntimeError):
        """Something a test helper could not do; the message says what and why."""


def fail(msg: str) -> None:
        """Fails the test (without a traceback) inside pytest; raises Failure outside it."""
        pytest = sys.modules.get("pytest")
        if pytest is None:
                raise Failure(msg)
        pytest.fail(msg, pytrace=False)


def require_root() -> None:
        """These tests need root and loop devices: fail (never skip) when missing."""
        if os.geteuid() != 0:
                fail("lifeboat's integration tests need root (losetup, mknod, mount); run them as root")
        if not os.path.exists("/dev/loop-control"):
                fail("lifeboat's integration tests need loop devices (/dev/loop-control is missing)")


def iso_in(seconds: float) -> str:
        """The time that far from now (negative: ago), as lifeboat and IMDS write it."""
        t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
