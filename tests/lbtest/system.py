# SPDX-License-Identifier: MIT
"""System state: commands, loop devices, mounts, and cleaning up what a test directory
left mounted or attached."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from .base import Failure


def run(argv: list[str], check: bool = True, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
                raise Failure(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
        return r


def is_under(path: str, base: Path) -> bool:
        base_s = str(base.resolve())
        return path == base_s or path.startswith(base_s.rstrip("/") + "/")


def loop_devices() -> list[dict[str, str]]:
        """[{"name": "/dev/loop3", "back-file": "/path", "maj:min": "7:3", "autoclear": bool}]
        (back-file without the " (deleted)" losetup adds)."""
        out = run(["losetup", "-J", "-l", "--output", "NAME,BACK-FILE,MAJ:MIN,AUTOCLEAR"]).stdout
        if not out.strip():
                return []
        result = []
        for d in json.loads(out).get("loopdevices", []):
                back = (d.get("back-file") or "").removesuffix(" (deleted)")
                result.append({"name": d["name"], "back-file": back, "maj:min": (d.get("maj:min") or "").strip(),
                               "autoclear": d.get("autoclear") in (True, 1, "1")})
        return result


def _unescape_mountinfo(s: str) -> str:
        """mountinfo escapes space, tab, newline and backslash as \\ooo (octal)."""
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts(pid: int | str = "self") -> list[dict[str, str]]:
        """[{"target", "source", "maj:min", "fstype", "options"}] from /proc/PID/mountinfo (ours
        by default; another process's shows its mount namespace, paths below its root), in
        mount order; options are the mount's and then the filesystem's."""
        result = []
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                        fields = line.split()
                        sep = fields.index("-")
                        result.append({"maj:min": fields[2], "target": _unescape_mountinfo(fields[4]),
                                       "source": _unescape_mountinfo(fields[sep + 2]), "fstype": fields[sep + 1],
                                       "options": fields[5] + "," + fields[sep + 3]})
        return result


def mount_namespace(pid: int | str = "self") -> int:
        """The mount namespace of a process: the inode of /proc/PID/ns/mnt (mnt:[N])."""
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino


def mount_of(target: str | Path) -> dict[str, str] | None:
        """The topmost mount on target, or None."""
        target = str(Path(target).resolve())
        found = None
        for m in mounts():
                if m["target"] == target:
                        found = m
        return found


def leftovers_under(base: Path) -> dict[str, list[str]]:
        """Mounts and loop devices that belong to a test directory: mounted under it,
        or a loop device (mounted anywhere) whose backing file is under it."""
        loops = [l for l in loop_devices() if is_under(l["back-file"], base)]
        loop_devs = {l["maj:min"] for l in loops}
        ms = [m["target"] for m in mounts() if is_under(m["target"], base) or m["maj:min"] in loop_devs]
        return {"mounts": ms, "loops": [f"{l['name']} ({l['back-file']})" for l in loops]}


def cleanup_under(base: Path) -> dict[str, list[str]]:
        """Unmounts and detaches everything left under base (innermost mounts first, lazy
        unmount as a last resort). Returns what could NOT be cleaned up."""
        # Autoclear loops and lazy unmounts go away asynchronously; on a loaded 2-core machine
        # that took longer than 0.6 s, so keep trying (growing pauses) for about 5 s.
        for attempt in range(10):
                left = leftovers_under(base)
                if not left["mounts"] and not left["loops"]:
                        break
                for target in sorted(left["mounts"], key=lambda t: t.count("/"), reverse=True):
                        if run(["umount", target], check=False).returncode != 0:
                                run(["umount", "-l", target], check=False)
                for l in loop_devices():
                        if is_under(l["back-file"], base):
                                run(["losetup", "-d", l["name"]], check=False)
                time.sleep(min(0.1 * (attempt + 1), 1.0))
        return leftovers_under(base)


def describe_leftovers(left: dict[str, list[str]]) -> str:
        parts = []
        if left["mounts"]:
                parts.append("mounts: " + ", ".join(left["mounts"]))
        if left["loops"]:
                parts.append("loop devices: " + ", ".join(left["loops"]))
        return "; ".join(parts)


def clean_dir(base: Path) -> list[str]:
        """cleanup_under, as a list of problems: empty, or what could not be cleaned up."""
        left = cleanup_under(base)
        if left["mounts"] or left["loops"]:
                return ["could not clean up " + describe_leftovers(left)]
        return []
