# SPDX-License-Identifier: MIT
"""Running the lifeboat binary under test (LIFEBOAT_BIN, set by ctest) or another one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
