# SPDX-License-Identifier: MIT
"""Running the lifeboat binary under test (LIFEBOAT_BIN, set by ctest) or another one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .base import fail


def lifeboat_bin() -> str:
        b = os.environ.get("LIFEBOAT_BIN")
        if not b or not os.access(b, os.X_OK):
                fail(f"LIFEBOAT_BIN must name the built lifeboat binary (got {b!r}); run through ctest "
                     "or set it by hand")
        return b  # type: ignore[return-value]


def run_lifeboat(env: dict[str, str], *args: str, timeout: float = 120, binary: str | None = None,
                 log: Path | None = None) -> subprocess.CompletedProcess:
        """Runs lifeboat (binary, or LIFEBOAT_BIN) to completion; stdout/stderr captured as
        text, and appended to log with the command line and exit code when given."""
        r = subprocess.run([binary or lifeboat_bin(), *args], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if log is not None:
                with open(log, "a") as f:
                        f.write(f"$ lifeboat {' '.join(args)}  -> exit {r.returncode}\n{r.stdout}{r.stderr}\n")
        return r


def reap_env(fake: Any, tmp_path: Path, group: str, **settings: str) -> dict[str, str]:
        """reap off EC2 against the fake (an lbtest.FakeAWS): a region, static credentials, the
        fake's EC2 endpoint, IMDS disabled, config files that do not exist; settings on top."""
        from .base import STATIC_ACCESS_KEY, STATIC_SECRET_KEY
        home = tmp_path / "reaper"
        home.mkdir(exist_ok=True)
        env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "AWS_ENDPOINT_URL_EC2": fake.ec2_endpoint,
                "AWS_REGION": fake.region,
                "AWS_ACCESS_KEY_ID": STATIC_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": STATIC_SECRET_KEY,
                "AWS_EC2_METADATA_DISABLED": "true",
                "LIFEBOAT_GROUP": group,
                "LIFEBOAT_CONFIG": str(home / "lifeboat.conf"),         # does not exist
                "LIFEBOAT_ECS_CONFIG": str(home / "ecs.config"),        # does not exist
                "LIFEBOAT_RUN_DIR": str(home / "run"),
        }
        env.update(settings)
        return env


def reap_json(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
        """reap --json ARGS: the process and its report, whose exit_code must be the exit status."""
        p = run_lifeboat(env, "reap", "--json", *args)
        try:
                doc = json.loads(p.stdout)
        except json.JSONDecodeError:
                fail(f"reap --json printed no JSON (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
        assert doc["exit_code"] == p.returncode, doc
        return p, doc


def volumes_by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """A reap report's volumes by volume id."""
        return {v["volume_id"]: v for v in doc["volumes"]}
