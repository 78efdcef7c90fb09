# SPDX-License-Identifier: MIT
"""Fixtures of lifeboat's integration tests.

  fake            a running tests/fakeaws/ in the test's own tmp_path (function scope),
                  as an lbtest.FakeAWS client; stopped and cleaned up afterwards
  integration_session
                  (session, autouse) fails every test when not root / no loop devices,
                  and fails the session loudly if anything leaked a loop device or mount
  no_leaks        (autouse) fails a test that left a loop device or mount under its
                  tmp_path (after `fake` cleaned up what lifeboat legitimately left)

Cleanup guarantee: whatever a test does (lifeboat mounting the buffer, make_image,
a crash, Ctrl-C), the fixture stops the fake (SIGTERM, then SIGKILL after 5 s),
then unmounts everything under the test's tmp dir (lazily as a last resort) and
detaches every loop device backed by a file under it.
"""

from __future__ import annotations

import atexit
import signal
import sys
from pathlib import Path

import pytest

# lbtest (tests/lbtest/) is shared with the demo and bench drivers: it lives in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lbtest  # noqa: E402

_running: list[lbtest.FakeAWS] = []
_leaks: list[str] = []


@atexit.register
def _last_resort() -> None:
        """If pytest dies without running finalizers, still leave nothing behind."""
        for f in list(_running):
                f.shutdown()


def pytest_configure(config: pytest.Config) -> None:
        # ctest's timeout and friends send SIGTERM: treat it like Ctrl-C, so pytest runs
        # the fixtures' teardown (the fake itself also exits when pytest goes away).
        def interrupt(signum: int, frame: object) -> None:
                raise KeyboardInterrupt(f"signal {signum}")
        signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session", autouse=True)
def integration_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
        lbtest.require_root()
        base = tmp_path_factory.getbasetemp()
        yield base
        left = lbtest.leftovers_under(base)
        problems = list(_leaks)
        if left["mounts"] or left["loops"]:
                problems.append(f"left at the end of the session: {lbtest.describe_leftovers(left)}")
                still = lbtest.cleanup_under(base)
                if still["mounts"] or still["loops"]:
                        problems.append(f"could not clean up: {lbtest.describe_leftovers(still)}")
        if problems:
                pytest.fail("LEAKED LOOP DEVICES OR MOUNTS:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest, tmp_path: Path) -> None:
        """A test must leave no loop device or mount under its tmp_path. Autouse, so set up
        before `fake` and torn down after it (after it cleaned up what lifeboat left)."""
        yield
        left = lbtest.leftovers_under(tmp_path)
        if left["mounts"] or left["loops"]:
                msg = f"{request.node.nodeid} leaked {lbtest.describe_leftovers(left)}"
                _leaks.append(msg)
                lbtest.cleanup_under(tmp_path)
                pytest.fail(msg, pytrace=False)


@pytest.fixture
def fake(tmp_path: Path, request: pytest.FixtureRequest) -> lbtest.FakeAWS:
        f = lbtest.FakeAWS.start(tmp_path)
        _running.append(f)
        try:
                yield f
        finally:
                _running.remove(f)
                # Stops the fake, checks it detached its own loop devices, cleans up tmp_path.
                problems = f.shutdown()
                left = lbtest.leftovers_under(tmp_path)
                if left["mounts"] or left["loops"]:
                        _leaks.append(f"{request.node.nodeid}: could not clean up {lbtest.describe_leftovers(left)}")
                if problems:
                        pytest.fail("\n".join(problems), pytrace=False)
