# SPDX-License-Identifier: MIT
"""Filesystem images: sparse files with a filesystem and files in them, as volumes for
the fake; reading one back."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .base import GIB
from .system import run

# mkfs.ext4 options for an ext4 that costs almost no disk: neither the journal nor the inode
# tables are zeroed (a new sparse file reads as zeros anyway) and there are few inodes, so that
# the kernel's lazy init has next to nothing to write once it is mounted. About 0.7 MiB of real
# blocks for 1 GiB, where a default ext4 costs 33 MiB and an xfs 65 MiB (mkfs.xfs writes its log,
# at least 64 MiB). For tests and benchmarks that need many volumes.
THIN_EXT4 = ["-E", "lazy_itable_init=1,lazy_journal_init=1", "-N", "1024"]


def _mkfs(path: Path, fs: str, uuid: str | None, label: str | None, thin: bool = False) -> None:
        if thin and fs != "ext4":
                raise ValueError(f"only ext4 can be made thin, not {fs!r}")
        if fs == "xfs":
                argv = ["mkfs.xfs", "-q", "-f"]
                if uuid:
                        argv += ["-m", f"uuid={uuid}"]
                if label:
                        argv += ["-L", label]
        elif fs == "ext4":
                argv = ["mkfs.ext4", "-q", "-F"] + (THIN_EXT4 if thin else [])
                if uuid:
                        argv += ["-U", uuid]
                if label:
                        argv += ["-L", label]
        else:
                raise ValueError(f"unknown filesystem {fs!r}")
        run(argv + [str(path)])


@contextlib.contextmanager
def mounted_image(path: Path | str, readonly: bool = False) -> Iterator[Path]:
        """Mounts an image (not attached anywhere else!) through its own loop device in a
        scratch directory beside it; always unmounted and detached again."""
        path = Path(path)
        mnt = Path(tempfile.mkdtemp(prefix=f".mnt-{path.name}-", dir=path.parent))
        loop = run(["losetup", "--find", "--show"] + (["--read-only"] if readonly else []) + [str(path)]).stdout.strip()
        mounted = False
        try:
                # -p: probe for real; blkid's cache may remember an earlier user of this loop device
                fstype = run(["blkid", "-p", "-o", "value", "-s", "TYPE", loop], check=False).stdout.strip()
                opts = ["ro"] if readonly else []
                if fstype == "xfs":
                        opts.append("nouuid")   # the same image may be mounted elsewhere by lifeboat
                        if readonly:
                                opts.append("norecovery")
                elif fstype == "ext4" and readonly:
                        opts.append("noload")
                argv = ["mount"] + (["-o", ",".join(opts)] if opts else []) + [loop, str(mnt)]
                run(argv)
                mounted = True
                yield mnt
        finally:
                if mounted:
                        if run(["umount", str(mnt)], check=False).returncode != 0:
                                run(["umount", "-l", str(mnt)], check=False)
                run(["losetup", "-d", loop], check=False)
                with contextlib.suppress(OSError):
                        mnt.rmdir()


def make_image(path: Path | str, size_gib: int = 1, fs: str | None = "xfs",
               files: dict[str, bytes | str] | None = None, uuid: str | None = None,
               label: str | None = None, thin: bool = False) -> Path:
        """A sparse image of size_gib GiB, optionally with a filesystem and files in it; thin:
        an ext4 that costs almost no disk (THIN_EXT4)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
                f.truncate(size_gib * GIB)
        if fs:
                _mkfs(path, fs, uuid, label, thin)
        if files:
                if not fs:
                        raise ValueError("files need a filesystem")
                with mounted_image(path) as mnt:
                        for rel, content in files.items():
                                p = mnt / rel
                                p.parent.mkdir(parents=True, exist_ok=True)
                                p.write_bytes(content.encode() if isinstance(content, str) else content)
                        os.sync()
        return path


def image_files(path: Path | str) -> dict[str, bytes]:
        """Every regular file in an image (mounted read-only): {relpath: content}."""
        result = {}
        with mounted_image(path, readonly=True) as mnt:
                for root, dirs, names in os.walk(mnt):
                        dirs[:] = [d for d in dirs if not (Path(root) == mnt and d == "lost+found")]
                        for n in names:
                                p = Path(root) / n
                                if p.is_file() and not p.is_symlink():
                                        result[str(p.relative_to(mnt))] = p.read_bytes()
        return result

