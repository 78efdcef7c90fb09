# SPDX-License-Identifier: MIT
"""What the drivers of scripts/demo and scripts/bench share: how a run ends (failed,
interrupted, cleaned up in any case) and the --cleanup safety net their scripts run on
exit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from .base import Failure
from .processes import stop_recorded
from .system import cleanup_under, describe_leftovers


class Interrupted(Exception):
        """SIGINT or SIGTERM arrived: the run stops and cleans up."""

        def __init__(self, signum: int):
                super().__init__(signal.Signals(signum).name)
                self.signum = signum


def _on_signal(signum: int, frame: Any) -> None:
        # Once: the cleanup that follows must not be cut short by the next signal.
        _ignore_signals()
        raise Interrupted(signum)


def _ignore_signals() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run_driver(name: str, play: Callable[[], int], close: Callable[[], list[str]],
               logs: Path | None = None) -> int:
        """Runs play() (its exit status) with SIGINT and SIGTERM raising Interrupted, then
        close() whatever happened, with those signals ignored. A Failure is reported in one
        line (and where the logs are), a bug with its traceback; a cleanup problem makes a
        successful run fail. Returns the exit status: 128 + the signal when interrupted."""
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        where = f"logs: {logs}" if logs else ""
        rc = 1
        try:
                rc = play()
        except Failure as e:
                print(f"\n{name} FAILED: {e}", file=sys.stderr)
                if where:
                        print(where, file=sys.stderr)
        except Interrupted as e:
                print(f"\n{name} interrupted ({e}): cleaning up", file=sys.stderr)
                rc = 128 + e.signum
        except BrokenPipeError:
                rc = 1                  # the reader went away (| head): just clean up
        except Exception:
                traceback.print_exc()
                print(f"{name} FAILED (a bug in the {name})" + (f"; {where}" if where else ""), file=sys.stderr)
        finally:
                _ignore_signals()
                problems = close()
                for p in problems:
                        print(f"{name} cleanup: {p}", file=sys.stderr)
                if problems and rc == 0:
                        rc = 1
        return rc


def options(doc: str) -> argparse.ArgumentParser:
        """The options of every driver: --workdir DIR --lifeboat BIN to run, --cleanup DIR."""
        ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--workdir", type=Path)
        ap.add_argument("--lifeboat", help="the lifeboat binary")
        ap.add_argument("--cleanup", type=Path, metavar="DIR")
        return ap


def preflight(name: str, ap: argparse.ArgumentParser, args: argparse.Namespace, needed: list[str]) -> int | None:
        """With --cleanup, runs the safety net and returns its exit status; otherwise checks
        that the needed options are there and that this runs as root (2 if not). None: go on."""
        if args.cleanup:
                return cleanup_command(name, args.cleanup)
        missing = [f"--{n}" for n in needed if not getattr(args, n)]
        if missing:
                ap.error(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} needed")
        if os.geteuid() != 0:
                print(f"{name}_driver: needs root (loop devices, mounts)", file=sys.stderr)
                return 2
        return None


def cleanup_command(name: str, workdir: Path) -> int:
        """--cleanup DIR: stops the run's processes still running, then unmounts and detaches
        everything under the work dir. 0 when nothing is left."""
        workdir = workdir.resolve()
        alive = stop_recorded(workdir)
        left = cleanup_under(workdir)
        if left["mounts"] or left["loops"] or alive:
                print(f"{name} cleanup: could not clean up {describe_leftovers(left)}"
                      f"{' processes ' + str(alive) if alive else ''}", file=sys.stderr)
                return 1
        return 0
