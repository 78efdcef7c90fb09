# SPDX-License-Identifier: MIT
"""The command line: python3 -m fakeaws (with tests/ on sys.path) or python3 tests/fakeaws.
See the package's docstring (fakeaws/__init__.py) for the options and the control API."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

if not __package__:
        # Run as `python3 tests/fakeaws`: sys.path[0] is this directory, whose modules must
        # not be importable as top-level ones; the package is imported from its parent.
        sys.path[0] = str(Path(__file__).resolve().parent.parent)

from fakeaws.server import FakeAws  # noqa: E402


def write_ready_file(path: Path, info: dict[str, Any]) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info) + "\n")
        os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
        ap = argparse.ArgumentParser(prog="fakeaws", description="Fake IMDS + EC2 for lifeboat's tests")
        ap.add_argument("--state-dir", required=True, type=Path)
        ap.add_argument("--region", default="us-east-1")
        ap.add_argument("--ready-file", type=Path)
        ap.add_argument("--exit-with-parent", action="store_true",
                        help="stop (cleaning up) when the process that started us goes away")
        args = ap.parse_args(argv)
        parent = os.getppid()

        stop_requested = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
                stop_requested.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        app = FakeAws(args.state_dir.resolve(), args.region)
        try:
                app.start()
                info = {"imds_port": app.imds_port, "ec2_port": app.ec2_port, "container_port": app.container_port,
                        "pid": os.getpid()}
                app.log("main", f"ready: {info}")
                if args.ready_file:
                        write_ready_file(args.ready_file, info)
                # Poll rather than block: the handler only sets a flag.
                while not stop_requested.is_set():
                        if args.exit_with_parent and os.getppid() != parent:
                                app.log("main", f"parent {parent} is gone")
                                break
                        time.sleep(0.1)
        finally:
                app.stop()
        return 0


if __name__ == "__main__":
        sys.exit(main())
