# SPDX-License-Identifier: MIT
"""The device side of attachments: each fake instance's own sysfs tree and /dev
directory (Host), and the loop devices that make an attached volume a real block
device (Attacher)."""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

from .base import Logger

EBS_MODEL = "Amazon Elastic Block Store"
DEVICE_RE = re.compile(r"^/dev/(sd|xvd)([a-z]{1,2})([0-9]*)$")


def device_slot(device: str) -> str | None:
        """/dev/sdf and /dev/xvdf are the same slot ("f"); None if not an EBS device name."""
        m = DEVICE_RE.match(device)
        return m.group(2) if m else None


class Host:
        """The fake machine of one instance: a sysfs tree and a /dev directory laid out
        like the kernel's (class/block and block entries are symlinks into devices/)."""

        def __init__(self, root: Path, style: str):
                self.root = root
                self.style = style
                self.sysfs_root = root / "sys"
                self.dev_root = root / "dev"
                self._nvme_in_use: set[int] = set()
                for d in ("class/block", "block", "devices"):
                        (self.sysfs_root / d).mkdir(parents=True, exist_ok=True)
                if style == "nvme":
                        (self.sysfs_root / "class/nvme").mkdir(parents=True, exist_ok=True)
                self.dev_root.mkdir(parents=True, exist_ok=True)

        # -- naming --

        def allocate_name(self, device: str, root: bool = False) -> str:
                """The kernel name the next disk gets: nvmeKn1 (lowest free K, 0 is the
                root) or xvdX for the requested /dev/sdX."""
                if self.style == "nvme":
                        k = 0 if root else 1
                        while k in self._nvme_in_use:
                                k += 1
                        self._nvme_in_use.add(k)
                        return f"nvme{k}n1"
                m = DEVICE_RE.match(device)
                assert m
                return "xvd" + m.group(2)

        def _disk_dir(self, name: str) -> Path:
                if self.style == "nvme":
                        k = int(name[4:-2])
                        return self._nvme_controller_dir(k) / name
                return self._vbd_dir(name) / "block" / name

        def _nvme_controller_dir(self, k: int) -> Path:
                return self.sysfs_root / "devices/pci0000:00" / f"0000:00:{0x10 + k:02x}.0" / "nvme" / f"nvme{k}"

        def _vbd_dir(self, name: str) -> Path:
                letters = name[3:]
                index = 0
                for c in letters:
                        index = index * 26 + (ord(c) - ord("a") + 1)
                return self.sysfs_root / "devices" / f"vbd-{51712 + 16 * (index - 1)}"

        # -- sysfs entries --

        def add_disk(self, name: str, volume_id: str, rdev: int, sectors: int, with_node: bool) -> None:
                """Creates the disk's sysfs entry (built aside, then renamed into place so a
                reader never sees it half written) and then its /dev node."""
                maj, mnr = os.major(rdev), os.minor(rdev)
                disk_files = {
                        "dev": f"{maj}:{mnr}\n",
                        "size": f"{sectors}\n",
                        "ro": "0\n",
                        "removable": "0\n",
                        "uevent": f"MAJOR={maj}\nMINOR={mnr}\nDEVNAME={name}\nDEVTYPE=disk\n",
                }
                if self.style == "nvme":
                        k = int(name[4:-2])
                        top = self._nvme_controller_dir(k)
                        tmp = top.with_name(f".{top.name}.tmp")
                        disk = tmp / name
                        disk.mkdir(parents=True)
                        _write_files(tmp, {
                                "model": EBS_MODEL.ljust(40) + "\n",
                                "serial": volume_id.replace("-", "").ljust(20) + "\n",
                                "firmware_rev": "1.0".ljust(8) + "\n",
                                "state": "live\n",
                        })
                        (disk / "device").symlink_to(f"../../nvme{k}")
                else:
                        top = self._vbd_dir(name)
                        tmp = top.with_name(f".{top.name}.tmp")
                        disk = tmp / "block" / name
                        disk.mkdir(parents=True)
                        (disk / "device").symlink_to("../../../" + top.name)
                        _write_files(tmp, {"devtype": "vbd\n", "nodename": f"device/vbd/{top.name[4:]}\n"})
                _write_files(disk, disk_files)
                (disk / "holders").mkdir()
                (disk / "slaves").mkdir()
                os.rename(tmp, top)
                real = self._disk_dir(name)
                rel = os.path.relpath(real, self.sysfs_root / "class/block")
                (self.sysfs_root / "class/block" / name).symlink_to(rel)
                (self.sysfs_root / "block" / name).symlink_to(os.path.relpath(real, self.sysfs_root / "block"))
                if self.style == "nvme":
                        (self.sysfs_root / "class/nvme" / top.name).symlink_to(
                                os.path.relpath(top, self.sysfs_root / "class/nvme"))
                if with_node:
                        node = self.dev_root / name
                        tmp_node = self.dev_root / f".{name}.tmp"
                        _unlink(tmp_node)
                        os.mknod(tmp_node, stat.S_IFBLK | 0o660, rdev)
                        os.rename(tmp_node, node)

        def remove_disk(self, name: str) -> None:
                """Node first (udev removes it on the way out), then the sysfs entry."""
                _unlink(self.dev_root / name)
                _unlink(self.sysfs_root / "class/block" / name)
                _unlink(self.sysfs_root / "block" / name)
                if self.style == "nvme":
                        k = int(name[4:-2])
                        _unlink(self.sysfs_root / "class/nvme" / f"nvme{k}")
                        _rmtree(self._nvme_controller_dir(k))
                        self._nvme_in_use.discard(k)
                else:
                        _rmtree(self._vbd_dir(name))


def _write_files(d: Path, files: dict[str, str]) -> None:
        for rel, content in files.items():
                p = d / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(content)


def _unlink(p: Path) -> None:
        try:
                p.unlink()
        except FileNotFoundError:
                pass


def _rmtree(p: Path) -> None:
        """Removes a tree without following symlinks."""
        if not p.exists() and not p.is_symlink():
                return
        if p.is_symlink() or not p.is_dir():
                p.unlink()
                return
        for child in p.iterdir():
                _rmtree(child)
        p.rmdir()


class Attacher:
        """Loop devices: set up on attach, torn down on detach and at exit."""

        def __init__(self, log: Logger):
                self._log = log
                self._lock = threading.Lock()
                self._loops: set[str] = set()

        def setup(self, image: str) -> tuple[str, int]:
                r = subprocess.run(["losetup", "--find", "--show", image],
                                   capture_output=True, text=True, timeout=30)
                if r.returncode != 0:
                        raise OSError(f"losetup --find --show {image}: {r.stderr.strip()}")
                loop = r.stdout.strip()
                with self._lock:
                        self._loops.add(loop)
                rdev = os.stat(loop).st_rdev
                self._log("attacher", f"{image} -> {loop} ({os.major(rdev)}:{os.minor(rdev)})")
                return loop, rdev

        def teardown(self, loop: str) -> None:
                r = subprocess.run(["losetup", "-d", loop], capture_output=True, text=True, timeout=30)
                if r.returncode != 0:
                        self._log("attacher", f"losetup -d {loop} failed: {r.stderr.strip()}")
                else:
                        self._log("attacher", f"detached {loop}")
                with self._lock:
                        self._loops.discard(loop)

        @staticmethod
        def mounted(rdev: int) -> bool:
                """Whether a filesystem on this device is mounted in any mount namespace of the
                machine (field 3 of /proc/PID/mountinfo, read for one process per namespace): a
                container's private copy of a mount keeps the device as busy as the host's."""
                want = f"{os.major(rdev)}:{os.minor(rdev)}"
                seen: set[int] = set()
                for pid in os.listdir("/proc"):
                        if not pid.isdigit():
                                continue
                        try:
                                ns = os.stat(f"/proc/{pid}/ns/mnt").st_ino
                                if ns in seen:
                                        continue
                                with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
                                        lines = [line.split() for line in f if line.strip()]
                        except OSError:
                                continue        # gone meanwhile, or a kernel thread
                        if not lines:
                                continue        # a zombie's is empty: another process speaks for it
                        seen.add(ns)
                        if any(len(fields) > 2 and fields[2] == want for fields in lines):
                                return True
                return False

        @staticmethod
        def claimed(loop: str) -> bool:
                """Whether someone holds the device exclusively (an O_EXCL open fails): a mounted
                filesystem does, also one detached lazily (umount -l, or its mount point removed)
                while a file on it is still open."""
                try:
                        fd = os.open(loop, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
                except OSError as e:
                        return e.errno == errno.EBUSY
                os.close(fd)
                return False

        @classmethod
        def in_use(cls, rdev: int, loop: str | None) -> bool:
                """EBS keeps a detaching volume busy while the instance's OS still holds it."""
                return cls.mounted(rdev) or (loop is not None and cls.claimed(loop))

        def teardown_all(self) -> None:
                with self._lock:
                        loops = sorted(self._loops)
                for loop in loops:
                        self.teardown(loop)

