# SPDX-License-Identifier: MIT
"""Helpers for lifeboat's integration tests and for the drivers of scripts/demo and
scripts/bench: the fake AWS client, lifeboat runners, filesystem images, processes, the
stand-in fluentd, and the loop-device / mount cleanup that keeps them from leaking
anything. Standard library only (pytest only where it fails a test).

Import it with tests/ on sys.path (the integration tests' conftest.py and the drivers put
it there); everything is here under its own name, lbtest.NAME:

  base       paths, the fake's static credentials, Failure / fail(), require_root, iso_in
  system     run(), loop devices, mounts (mount_of, of any process), mount_namespace,
             leftovers and their cleanup (clean_dir)
  images     make_image, mounted_image, image_files
  processes  wait_for, wait_ready, stop_process, Processes (a driver's processes and fakes,
             recorded for stop_recorded, the safety net), NamespaceHolder (a process in a
             private mount namespace, as a container)
  lifeboat   lifeboat_bin, run_lifeboat, reap_env / reap_json / volumes_by_id (reap against the fake)
  aws        http(), sigv4_headers, group_tags, FakeAWS (start, shutdown, control API, add_orphan,
             env_for), awscli
  fluentd    chunk files and records, FakeFluentd, FluentdRpc
  drivers    options and preflight (a driver's command line), run_driver (how a demo or
             bench run ends), cleanup_command (--cleanup)
"""

from .base import (AWSCLI, FAKEAWS, FAKEFLUENTD, GIB, PYTHON, SOURCE_DIR, STATIC_ACCESS_KEY,  # noqa: F401
                   STATIC_SECRET_KEY, TESTS_DIR, Failure, fail, iso_in, require_root)
from .system import (clean_dir, cleanup_under, describe_leftovers, is_under, leftovers_under,  # noqa: F401
                     loop_devices, mount_namespace, mount_of, mounts, run)
from .images import image_files, make_image, mounted_image  # noqa: F401
from .processes import (NamespaceHolder, Processes, log_tail, stop_process, stop_recorded, wait_for,  # noqa: F401
                        wait_ready)
from .lifeboat import lifeboat_bin, reap_env, reap_json, run_lifeboat, volumes_by_id  # noqa: F401
from .aws import FakeAWS, HttpAnswer, awscli, group_tags, http, sigv4_headers  # noqa: F401
from .fluentd import (CHUNK_PATTERN, FakeFluentd, FluentdRpc, chunk_files, digest, record,  # noqa: F401
                      record_lines, write_chunks)
from .drivers import Interrupted, cleanup_command, options, preflight, run_driver  # noqa: F401
