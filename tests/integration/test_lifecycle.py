# SPDX-License-Identifier: MIT
"""lifeboat watch holding an Auto Scaling termination lifecycle hook (LIFEBOAT_LIFECYCLE_HOOK)
through a scale-in, against the fake's Auto Scaling (real loop devices, the stand-in fluentd):
heartbeats while fluentd drains, CompleteLifecycleAction CONTINUE right after the flushed tag or
at LIFEBOAT_LIFECYCLE_TIMEOUT, a hook completed by someone else, a spot notice during the wait,
SIGTERM during the wait, a restarted watch, and no hook configured at all.

The hooks here have heartbeat timeouts of seconds (the fake's control API allows them; AWS's
least is 30 s), so that a test sees several heartbeat periods pass."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import lbtest
from lbtest import chunk_files, iso_in, write_chunks
from test_watch import Fluentd, Watch  # the stand-in fluentd, and watch in the background

GROUP = "ads-spot"
HOOK = "lifeboat-drain"
STATE = "lifeboat:state"


def drain_hook(heartbeat_timeout: int = 2, **more: Any) -> dict[str, Any]:
        return {"name": HOOK, "heartbeat_timeout": heartbeat_timeout, "default_result": "CONTINUE", **more}


class Node:
        """A fake instance of the Auto Scaling group GROUP after `lifeboat boot`, its own buffer
        volume mounted; watch told about the hook HOOK unless hook is None."""

        def __init__(self, fake: lbtest.FakeAWS, tmp: Path, hooks: list[dict[str, Any]] | None = None,
                     metadata_tags: bool = True, hook: str | None = HOOK, **settings: str):
                self.fake = fake
                self.tmp = tmp
                self.info = fake.add_instance(buffer={"device": "/dev/sdf", "size_gib": 1}, metadata_tags=metadata_tags)
                self.iid = self.info["instance_id"]
                self.own_volume = self.info["buffer_volume_id"]
                fake.add_group(GROUP, [self.iid], [drain_hook()] if hooks is None else hooks)
                self.env = fake.env_for(self.info)
                self.env.update({
                        "LIFEBOAT_BUFFER_DEVICE": "/dev/sdf",
                        "LIFEBOAT_POLL_INTERVAL": "200ms",
                        "LIFEBOAT_FLUSH_TIMEOUT": "2s",
                        "LIFEBOAT_FLUSH_MARGIN": "10s",
                        "LIFEBOAT_LIFECYCLE_TIMEOUT": "60s",
                        "LIFEBOAT_FLUENTD_RPC": "http://127.0.0.1:9",     # nothing listens until fluentd starts
                })
                if hook:
                        self.env["LIFEBOAT_LIFECYCLE_HOOK"] = hook
                self.env.update(settings)
                self.buffer = Path(self.env["LIFEBOAT_BUFFER_MOUNT"])
                self.live = self.buffer / "s3"
                self.run_dir = Path(self.env["LIFEBOAT_RUN_DIR"])
                r = lbtest.run_lifeboat(self.env, "boot")
                assert r.returncode == 0, r.stdout + r.stderr
                self.fluentd: Fluentd | None = None

        def start_fluentd(self, *extra: str) -> Fluentd:
                self.fluentd = Fluentd(self.tmp, self.live, Path(self.env["LIFEBOAT_FLUENTD_CONF_DIR"]), *extra)
                self.env["LIFEBOAT_FLUENTD_RPC"] = self.fluentd.url
                return self.fluentd

        def watch(self, name: str = "watch.log") -> Watch:
                return Watch(self.fake, self.env, self.tmp / name)

        def tags(self) -> dict[str, str]:
                return self.fake.volume(self.own_volume)["tags"]

        def state(self) -> dict[str, Any]:
                try:
                        return json.loads((self.run_dir / "watch.json").read_text())
                except (FileNotFoundError, ValueError):
                        return {}

        def hook(self) -> dict[str, Any]:
                return self.state().get("lifecycle_hook") or {}

        def own(self) -> str | None:
                return self.state().get("own", {}).get("state")

        def member(self) -> dict[str, Any]:
                [m] = [m for m in self.fake.group(GROUP)["instances"] if m["instance_id"] == self.iid]
                return m

        def action(self, hook: str = HOOK) -> dict[str, Any]:
                [a] = [a for a in self.member()["actions"] if a["hook"] == hook]
                return a

        def wait_hook(self, what: str, predicate, timeout: float = 10) -> dict[str, Any]:
                return lbtest.wait_for(what, lambda: (h := self.hook()) and predicate(h) and h, timeout, 0.05)

        def wait_known(self) -> dict[str, Any]:
                return self.wait_hook("watch to know the group and the hook",
                                      lambda h: h["group"] == GROUP and h["heartbeat_timeout_s"] is not None)


@pytest.fixture
def nodes(fake: lbtest.FakeAWS, tmp_path: Path):
        made: list[Node] = []

        def make(**kw: Any) -> Node:
                n = Node(fake, tmp_path, **kw)
                made.append(n)
                return n

        yield make
        for p in fake.children:
                if p.poll() is None:
                        p.send_signal(signal.SIGINT)    # twice: do not wait for a drain
                        time.sleep(0.05)
                        p.send_signal(signal.SIGINT)
        for p in fake.children:
                try:
                        p.wait(10)
                except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
        for n in made:
                if n.fluentd:
                        n.fluentd.stop()
        # A scale-in ends with the fake terminating the instance while its buffer is still
        # mounted here (a real instance would be gone): its loop device is only marked to go
        # away with the last user. Unmount, and wait for the kernel to let it go, so that the
        # fixtures' cleanup does not race it on a busy machine.
        for n in made:
                if fake.instance(n.iid)["state"] == "terminated" and lbtest.mount_of(n.buffer):
                        lbtest.run(["umount", str(n.buffer)])
        lbtest.wait_for("the terminated instances' loop devices to go away",
                        lambda: not [d for d in lbtest.loop_devices()
                                     if d["autoclear"] and lbtest.is_under(d["back-file"], tmp_path)], 20, 0.1)


def wall(iso: str) -> float:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def lines_with(log: str, *words: str) -> list[str]:
        return [ln for ln in log.splitlines() if all(w in ln for w in words)]


# ---------------------------------------------------------------------------

def test_scale_in_is_held_until_the_buffer_is_drained(nodes, fake):
        """fluentd needs three heartbeat periods: the hook is kept alive all along, the volume is
        tagged flushed first, then CompleteLifecycleAction CONTINUE, then the group terminates."""
        node = nodes()
        write_chunks(node.live, 300)
        fl = node.start_fluentd("--flush-delay", "6.5")      # 3 x the hook's 2 s, and a bit
        w = node.watch()
        h = node.wait_known()
        assert (h["state"], h["heartbeat_timeout_s"], h["default_result"], h["heartbeats"]) == ("idle", 2, "CONTINUE", 0)
        # The group came from the instance's tags in IMDS: no DescribeAutoScalingInstances.
        assert fake.requests(action="DescribeAutoScalingInstances") == []
        assert len(fake.requests(action="/latest/meta-data/tags/instance/aws:autoscaling:groupName")) == 1

        fake.scale_in(GROUP, node.iid)
        node.wait_hook("the hold", lambda h: h["state"] == "holding" and h["heartbeats"] >= 1, timeout=5)
        # `lifeboat status` shows it meanwhile.
        r = lbtest.run_lifeboat(node.env, "status")
        assert r.returncode == 0, r.stderr
        assert f"lifecycle hook {HOOK} of Auto Scaling group {GROUP}: HOLDING the scale-in since" in r.stdout, r.stdout
        r = lbtest.run_lifeboat(node.env, "status", "--json")
        assert json.loads(r.stdout)["watch"]["state"]["lifecycle_hook"]["state"] == "holding"
        # The flush timeout (2 s) is not the deadline: the hook's is.
        assert wall(node.state()["own"]["deadline"]) - time.time() > 50

        node.wait_hook("the completion", lambda h: h["state"] == "completed", timeout=20)
        assert node.own() == "flushed" and node.tags()[STATE] == "flushed"
        assert chunk_files(node.live) == [] and fl.status()["shipped_records"] == 300

        m, a = node.member(), node.action()
        assert (a["result"], a["ended_by"]) == ("CONTINUE", "complete"), a
        assert len(a["heartbeats"]) >= 3, a
        # Never a gap as long as the heartbeat timeout: the wait was never close to running out.
        beats = [a["started"], *a["heartbeats"], a["ended_at"]]
        assert max(b - a_ for a_, b in zip(beats, beats[1:])) < 2, beats
        assert node.hook()["heartbeats"] == len(a["heartbeats"])
        # The flushed tag first, then the completion, then the termination.
        [complete] = fake.requests(action="CompleteLifecycleAction")
        last_tag = fake.requests(service="ec2", action="CreateTags")[-1]
        assert last_tag["status"] == 200 and last_tag["t"] < complete["t"] <= a["ended_at"] <= m["terminated_at"]
        assert wall(node.tags()["lifeboat:flushed-at"]) <= wall(node.hook()["completed_at"])
        assert m["lifecycle_state"] == "Terminated" and fake.instance(node.iid)["state"] == "terminated"
        h = node.hook()
        assert (h["result"], h["completed_because"]) == ("CONTINUE", "drained")
        log = w.log()
        assert log.index("tagged flushed") < log.index(f"completed lifecycle hook {HOOK} (CONTINUE)"), log
        assert "NOT drained" not in log and "error" not in log, log
        assert fake.requests(action="CompleteLifecycleAction")[0]["status"] == 200
        assert w.stop() == 0


def test_stuck_fluentd_is_let_go_at_the_lifecycle_timeout(nodes, fake):
        """Instance metadata tags off: the group comes from DescribeAutoScalingInstances. fluentd
        never ships: CONTINUE at LIFEBOAT_LIFECYCLE_TIMEOUT, the volume stays dirty."""
        node = nodes(metadata_tags=False, LIFEBOAT_LIFECYCLE_TIMEOUT="4s")
        write_chunks(node.live, 200)
        node.start_fluentd("--stuck")
        w = node.watch()
        node.wait_known()
        assert [q["status"] for q in fake.requests(action="DescribeAutoScalingInstances")] == [200]

        fake.scale_in(GROUP, node.iid)
        h = node.wait_hook("the completion at the deadline", lambda h: h["state"] == "completed", timeout=15)
        assert h["completed_because"] == "deadline"
        m, a = node.member(), node.action()
        assert (a["result"], a["ended_by"]) == ("CONTINUE", "complete"), a
        held = a["ended_at"] - m["scale_in_at"]
        assert 3.5 < held < 6, f"held {held:.1f} s for a 4 s timeout"
        assert len(a["heartbeats"]) >= 2
        assert node.own() == "undrained" and node.tags()[STATE] == "dirty"
        assert len(chunk_files(node.live)) == 2
        log = w.log()
        assert lines_with(log, "warning:", "NOT drained by the deadline"), log
        assert lines_with(log, "warning:", f"completed lifecycle hook {HOOK} (CONTINUE)", "NOT drained"), log
        assert "ABANDON" not in json.dumps(fake.group(GROUP)), "never ABANDON"
        assert w.stop() == 1


def test_hook_completed_by_someone_else_is_no_error(nodes, fake):
        """Somebody completes lifeboat's hook; ECS managed draining's hook still holds the
        instance. lifeboat's next call finds no action: logged, watch goes on as without a hook."""
        node = nodes(hooks=[drain_hook(), drain_hook(3600, name="ecs-managed-draining-termination-hook")],
                     LIFEBOAT_FLUSH_TIMEOUT="3s")
        write_chunks(node.live, 100)
        fl = node.start_fluentd("--stuck")
        w = node.watch()
        node.wait_known()
        fake.scale_in(GROUP, node.iid)
        node.wait_hook("the hold", lambda h: h["state"] == "holding" and h["heartbeats"] >= 1, timeout=5)
        answer = fake.autoscaling("CompleteLifecycleAction", {"LifecycleHookName": HOOK, "AutoScalingGroupName": GROUP,
                                                              "InstanceId": node.iid, "LifecycleActionResult": "CONTINUE"})
        assert answer.status == 200, answer.text

        node.wait_hook("lifeboat to notice", lambda h: h["state"] == "gone", timeout=5)
        calls = len(fake.requests(service="autoscaling"))
        log = w.log()
        [line] = lines_with(log, "found no lifecycle action waiting for this instance")
        assert not line.startswith(("lifeboat: error", "lifeboat: warning")), line
        assert "error:" not in log, log
        # As a scale-in without a hook: the flush timeout from the notice is the deadline now.
        st = node.state()
        assert wall(st["own"]["deadline"]) - wall(st["lifecycle_hook"]["waiting_since"]) <= 4
        # Watch goes on: fluentd ships, the volume is tagged flushed; ECS's hook still waits.
        fl.mode(stuck=False)
        lbtest.wait_for("flushed", lambda: node.tags()[STATE] == "flushed", 10)
        assert w.alive()
        assert node.member()["lifecycle_state"] == "Terminating:Wait"
        assert len(fake.requests(service="autoscaling")) == calls, "no more Auto Scaling calls once it was gone"
        assert w.stop() == 0


def test_no_hook_configured_is_todays_behaviour(nodes, fake):
        node = nodes(hook=None)
        write_chunks(node.live, 100)
        node.start_fluentd("--stuck")
        w = node.watch()
        lbtest.wait_for("watch to confirm the own volume", lambda: node.own() == "dirty", 10)
        fake.scale_in(GROUP, node.iid)
        lbtest.wait_for("the flush timeout", lambda: node.own() == "undrained", 6)
        st = node.state()
        assert st["lifecycle_hook"] is None
        assert [n["trigger"] for n in st["notices"]] == ["asg"]
        assert wall(st["own"]["deadline"]) - wall(st["notices"][0]["seen_at"]) <= 3, "LIFEBOAT_FLUSH_TIMEOUT"
        assert fake.requests(service="autoscaling") == []
        assert not [q for q in fake.requests(service="imds") if "/tags/" in q["action"]]
        # The group's hook runs out by itself: its default result, then the termination.
        lbtest.wait_for("the hook's timeout", lambda: node.member()["terminated_at"], 5)
        assert node.action()["ended_by"] == "heartbeat-timeout"
        assert node.tags()[STATE] == "dirty"
        assert w.stop() == 1


def test_spot_notice_during_the_wait_wins(nodes, fake):
        node = nodes(LIFEBOAT_FLUSH_TIMEOUT="30s")     # the spot deadline is its time minus the margin
        write_chunks(node.live, 100)
        node.start_fluentd("--stuck")
        w = node.watch()
        node.wait_known()
        fake.scale_in(GROUP, node.iid)
        node.wait_hook("the hold", lambda h: h["state"] == "holding" and h["heartbeats"] >= 1, timeout=5)
        held_until = wall(node.state()["own"]["deadline"])
        assert held_until - time.time() > 50

        # Two minutes' notice in the middle of a 60 s hold would still win; here its time minus the
        # margin is 4 s away.
        fake.events(node.iid, spot={"action": "terminate", "time": iso_in(14)})
        t0 = time.time()
        h = node.wait_hook("the completion at the spot deadline", lambda h: h["state"] == "completed", timeout=10)
        assert h["completed_because"] == "deadline"
        st = node.state()
        assert wall(st["own"]["deadline"]) < held_until - 40
        assert 2 < wall(h["completed_at"]) - t0 < 7
        assert [n["trigger"] for n in st["notices"]] == ["asg", "spot"]
        assert node.own() == "undrained" and node.tags()[STATE] == "dirty"
        assert node.action()["result"] == "CONTINUE"
        w.proc.send_signal(signal.SIGTERM)      # and a second one: no final wait of 30 s
        time.sleep(0.5)
        assert w.stop() == 1


def test_sigterm_while_holding_completes_once_drained(nodes, fake):
        node = nodes(LIFEBOAT_FLUSH_TIMEOUT="10s")
        write_chunks(node.live, 100)
        node.start_fluentd("--flush-delay", "2.5")
        w = node.watch()
        node.wait_known()
        fake.scale_in(GROUP, node.iid)
        node.wait_hook("the hold", lambda h: h["state"] == "holding", timeout=5)
        assert node.own() == "draining"
        # systemd stops the unit while fluentd still ships: the final check waits, and lets the
        # instance go as soon as the volume is drained.
        assert w.stop(timeout=20) == 0
        h = node.hook()
        assert (h["state"], h["completed_because"]) == ("completed", "drained")
        assert node.action()["ended_by"] == "complete"
        assert node.tags()[STATE] == "flushed"


def test_sigterm_undrained_leaves_the_hook_and_a_new_watch_takes_over(nodes, fake):
        node = nodes(hooks=[drain_hook(6)], LIFEBOAT_LIFECYCLE_TIMEOUT="40s")
        write_chunks(node.live, 100)
        fl = node.start_fluentd("--stuck")
        w = node.watch()
        node.wait_known()
        fake.scale_in(GROUP, node.iid)
        first = node.wait_hook("the hold", lambda h: h["state"] == "holding" and h["heartbeats"] >= 1, timeout=5)
        deadline = node.state()["own"]["deadline"]

        # A stop undrained (an upgrade restarting the unit, say): the hook is left waiting, not completed.
        assert w.stop(timeout=20) == 1
        h = node.hook()
        assert h["state"] == "left"
        assert fake.requests(action="CompleteLifecycleAction") == []
        assert lines_with(w.log(), "warning:", f"stopping with lifecycle hook {HOOK}", "not completed"), w.log()
        assert node.member()["lifecycle_state"] == "Terminating:Wait"

        # The next watch takes the wait over: the same start, so the same deadline (watch.json keeps
        # the start to the second, cut down: the new deadline may come up to a second earlier, never
        # later); fluentd drains.
        fl.mode(stuck=False)
        w2 = node.watch("watch2.log")
        node.wait_hook("the completion", lambda h: h["state"] == "completed", timeout=15)
        h = node.hook()
        assert h["waiting_since"] == first["waiting_since"]
        assert 0 <= wall(deadline) - wall(node.state()["own"]["deadline"]) <= 1
        a = node.action()
        assert (a["ended_by"], a["result"]) == ("complete", "CONTINUE")
        assert h["heartbeats"] == len(a["heartbeats"]) >= 1       # counted on from the first watch
        assert "taking it over" in w2.log()
        assert w2.stop() == 0


def test_sigterm_does_not_hold_past_the_lifecycle_timeout(nodes, fake):
        """A stop's own budget (LIFEBOAT_FLUSH_TIMEOUT, 30 s here) is for the final check: the
        scale-in is still let go at LIFEBOAT_LIFECYCLE_TIMEOUT (4 s), undrained."""
        node = nodes(LIFEBOAT_LIFECYCLE_TIMEOUT="4s", LIFEBOAT_FLUSH_TIMEOUT="30s")
        write_chunks(node.live, 100)
        node.start_fluentd("--stuck")
        w = node.watch()
        node.wait_known()
        fake.scale_in(GROUP, node.iid)
        node.wait_hook("the hold", lambda h: h["state"] == "holding" and h["heartbeats"] >= 1, timeout=5)
        w.proc.send_signal(signal.SIGTERM)
        h = node.wait_hook("the completion at the lifecycle timeout", lambda h: h["state"] == "completed", timeout=10)
        assert h["completed_because"] == "deadline"
        m, a = node.member(), node.action()
        held = a["ended_at"] - m["scale_in_at"]
        assert 3.5 < held < 6, f"held {held:.1f} s for a 4 s timeout"
        assert (a["result"], a["ended_by"]) == ("CONTINUE", "complete")
        assert node.tags()[STATE] == "dirty"
        # watch itself still gives the final check its budget; a second signal ends that.
        assert w.alive()
        assert w.stop() == 1
        assert node.hook()["state"] == "completed"


def test_example_hook_beside_ecs_managed_draining(nodes, fake, tmp_path):
        """The hook of packaging/autoscaling/lifecycle-hook.json, made with awscli as the README says,
        beside ECS managed draining's hook: lifeboat's CONTINUE ends only its own action; the
        instance goes when ECS completes its own."""
        example = lbtest.SOURCE_DIR / "packaging/autoscaling/lifecycle-hook.json"
        spec = json.loads(example.read_text())
        assert (spec["LifecycleTransition"], spec["DefaultResult"]) == ("autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE")
        node = nodes(hooks=[], hook=spec["LifecycleHookName"])
        r = lbtest.awscli(fake, tmp_path, "autoscaling", "put-lifecycle-hook", "--cli-input-json", f"file://{example}",
                          "--auto-scaling-group-name", GROUP)
        assert r.returncode == 0, r.stderr
        ecs_hook = "ecs-managed-draining-termination-hook"
        r = lbtest.awscli(fake, tmp_path, "autoscaling", "put-lifecycle-hook", "--lifecycle-hook-name", ecs_hook,
                          "--auto-scaling-group-name", GROUP, "--lifecycle-transition",
                          "autoscaling:EC2_INSTANCE_TERMINATING", "--heartbeat-timeout", "3600",
                          "--default-result", "CONTINUE")
        assert r.returncode == 0, r.stderr

        write_chunks(node.live, 100)
        node.start_fluentd("--flush-delay", "1")
        w = node.watch()
        h = node.wait_hook("watch to read the hook", lambda h: h["heartbeat_timeout_s"] is not None)
        assert (h["name"], h["heartbeat_timeout_s"], h["default_result"]) == (spec["LifecycleHookName"], 300, "CONTINUE")
        fake.scale_in(GROUP, node.iid)
        h = node.wait_hook("the completion", lambda h: h["state"] == "completed", timeout=15)
        assert h["completed_because"] == "drained" and node.tags()[STATE] == "flushed"
        # A 300 s heartbeat timeout needs only the first heartbeat here.
        assert h["heartbeats"] == 1

        actions = {a["hook"]: a for a in node.member()["actions"]}
        assert (actions[spec["LifecycleHookName"]]["result"], actions[ecs_hook]["result"]) == ("CONTINUE", None)
        assert node.member()["lifecycle_state"] == "Terminating:Wait", "ECS's hook still holds the instance"
        answer = fake.autoscaling("CompleteLifecycleAction", {"LifecycleHookName": ecs_hook, "AutoScalingGroupName": GROUP,
                                                              "InstanceId": node.iid, "LifecycleActionResult": "CONTINUE"})
        assert answer.status == 200, answer.text
        assert node.member()["lifecycle_state"] == "Terminated"
        assert w.stop() == 0
        assert "warning" not in w.log(), w.log()


def test_failed_lookup_before_the_scale_in_does_not_delay_the_hold(nodes, fake):
        """DescribeLifecycleHooks fails at start (watch then asks again only a minute later); a
        scale-in does not wait for that minute: the lookup and the hold start at once."""
        node = nodes()
        fake.fault(action="DescribeLifecycleHooks", kind="5xx", status=500, count=-1)
        write_chunks(node.live, 100)
        node.start_fluentd("--flush-delay", "2")
        w = node.watch()
        h = node.wait_hook("the failed lookup", lambda h: "DescribeLifecycleHooks" in (h["reason"] or ""), timeout=15)
        assert h["group"] == GROUP and h["heartbeat_timeout_s"] is None
        assert lines_with(w.log(), "warning:", f"lifecycle hook {HOOK}: cannot read the hook"), w.log()
        fake.reset_faults()

        fake.scale_in(GROUP, node.iid)
        t0 = time.monotonic()
        node.wait_hook("the hold", lambda h: h["state"] == "holding" and h["heartbeats"] >= 1, timeout=5)
        assert time.monotonic() - t0 < 3
        h = node.wait_hook("the completion", lambda h: h["state"] == "completed", timeout=15)
        assert (h["heartbeat_timeout_s"], h["completed_because"], h["reason"]) == (2, "drained", None)
        assert node.action()["ended_by"] == "complete"
        assert w.stop() == 0
