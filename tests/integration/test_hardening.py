# SPDX-License-Identifier: MIT
"""What a hostile tag, file or setting can no longer do (issue 13, README "Security"): every
test here failed before its fix.

Tags are written by anyone whose role may tag the group's volumes (every instance of the
group), so their values are anyone's text: a cut inside a UTF-8 character once erased the JSON
report, and control characters reached the terminal. Files in the run directory are root's but
are read back without trust. Settings must not send signed requests in clear text.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import lbtest
from lbtest import chunk_files, run_lifeboat
# The watch fixtures (an instance after boot, with a recovered volume): shared, not copied.
from test_watch import chunk_image_files, cluster  # noqa: F401

GROUP = "test-group"
AZ = "us-east-1a"
EXIT_USAGE, EXIT_ATTENTION = 2, 4
# "x" then é (2 bytes each): every cut at an even byte count falls inside a character.
ODD_UTF8 = "x" + "\u00e9" * 200
# What XML lets through to a terminal: newlines and the C1 control CSI (U+009B), which
# terminals read like ESC [ (clear the screen, move the cursor, color).
FORGED_LINE = "ok\nvol-0ffffffffffffffff quarantined \u009b2J\u009b31mforged"


def reap_env(fake: lbtest.FakeAWS, tmp_path: Path) -> dict[str, str]:
        return lbtest.reap_env(fake, tmp_path, GROUP)


def assert_no_raw_controls(text: str) -> None:
        """Nothing a terminal acts on but the line ends: no C0 (except \\n), DEL or C1."""
        bad = [c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0)]
        assert not bad, f"raw control characters {bad!r} in:\n{text}"


def json_doc(p: subprocess.CompletedProcess) -> dict[str, Any]:
        try:
                return json.loads(p.stdout)
        except json.JSONDecodeError:
                pytest.fail(f"no JSON on stdout (exit {p.returncode}):\n{p.stdout!r}\n{p.stderr}")


# --------------------------------------------------------------------------
# a tag cannot hide or forge a report
# --------------------------------------------------------------------------

def test_utf8_reason_tag_cannot_erase_reap_json(fake, tmp_path):
        """A quarantined volume's reason is cut to fit the report; the cut fell inside a
        character, json_pack refused the report and `reap --json` printed nothing (exit 4)."""
        env = reap_env(fake, tmp_path)
        vid = fake.add_volume(availability_zone=AZ, tags=lbtest.group_tags(GROUP, "quarantined", reason=ODD_UTF8))
        state_vid = fake.add_volume(availability_zone=AZ, tags=lbtest.group_tags(GROUP, ODD_UTF8[:150]))
        p = run_lifeboat(env, "reap", "--json")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        doc = json_doc(p)
        vols = {v["volume_id"]: v for v in doc["volumes"]}
        reason = vols[vid]["reason"]
        assert len(reason.encode()) >= 250 and ODD_UTF8.startswith(reason), reason
        assert vols[state_vid]["category"] == "kept"
        assert vols[state_vid]["reason"].startswith("unknown state tag 'x\u00e9")


def test_reap_table_escapes_tag_values(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        vid = fake.add_volume(availability_zone=AZ, tags=lbtest.group_tags(GROUP, "quarantined", reason=FORGED_LINE))
        p = run_lifeboat(env, "reap")
        assert p.returncode == EXIT_ATTENTION, p.stderr
        assert_no_raw_controls(p.stdout)
        [row] = [line for line in p.stdout.splitlines() if vid in line]
        assert "reason: ok\\nvol-0ffffffffffffffff quarantined \\x9b2J\\x9b31mforged" in row
        assert not any(line.startswith("vol-0ffffffffffffffff") for line in p.stdout.splitlines())
        # The JSON report keeps the value as it is: JSON escapes it itself.
        doc = json_doc(run_lifeboat(env, "reap", "--json", "--dry-run"))
        assert {v["volume_id"]: v["reason"] for v in doc["volumes"]}[vid] == FORGED_LINE


def test_status_table_escapes_tag_values(fake):
        inst = fake.add_instance(availability_zone=AZ)
        vid = fake.add_volume(availability_zone=AZ, tags=lbtest.group_tags(GROUP, "dirty", owner=FORGED_LINE))
        p = run_lifeboat(fake.env_for(inst), "status")
        assert p.returncode == 0, p.stderr
        assert_no_raw_controls(p.stdout)
        [row] = [line for line in p.stdout.splitlines() if vid in line]
        assert "ok\\nvol-0ffffffffffffffff quarantined \\x9b2J\\x9b31mforged" in row
        doc = json_doc(run_lifeboat(fake.env_for(inst), "status", "--json"))
        assert doc["volumes"][0]["owner"] == FORGED_LINE


def test_hostile_fs_uuid_tag_keeps_boot_reports_whole(fake, tmp_path):
        """The fs-uuid tag is quoted in the quarantine reason (256 bytes): the reason, and the
        reason tag boot writes from it, were cut inside a character, `boot --json` printed
        nothing, and the text report passed the tag's controls to the terminal."""
        inst = fake.add_instance(availability_zone=AZ)
        prefix = len("filesystem UUID 01234567-89ab-cdef-0123-456789abcdef does not match tag ".encode())
        pad = "" if (255 - prefix - len(FORGED_LINE.encode())) % 2 else "y"
        hostile = FORGED_LINE + pad + ODD_UTF8[:150]
        def orphan(name: str) -> str:
                return fake.add_orphan(tmp_path / "images" / f"{name}.img", GROUP, "i-0dead0000beef0001",
                                       tag_uuid=hostile, availability_zone=AZ)[0]

        env = fake.env_for(inst, LIFEBOAT_FLUENTD_RPC="", LIFEBOAT_DEVICE_TIMEOUT="10s")
        first = orphan("first")
        p = run_lifeboat(env, "boot", "--json")
        assert p.returncode == 1, p.stderr
        [v] = json_doc(p)["volumes"]
        assert v["volume_id"] == first and v["outcome"] == "quarantined", v
        assert v["reason"].startswith("filesystem UUID ") and "does not match tag ok\nvol-0f" in v["reason"]
        assert len(v["reason"].encode()) >= 250
        assert fake.volume(first)["tags"]["lifeboat:reason"] == v["reason"]

        second = orphan("second")
        p = run_lifeboat(env, "boot")
        assert p.returncode == 1, p.stderr
        assert_no_raw_controls(p.stdout)
        [line] = [line for line in p.stdout.splitlines() if line.startswith(f"QUARANTINED {second}:")]
        assert "does not match tag ok\\nvol-0ffffffffffffffff quarantined \\x9b2J" in line


# --------------------------------------------------------------------------
# files in the run directory are read without trust
# --------------------------------------------------------------------------

def test_release_removes_only_the_volumes_own_snippet(cluster, tmp_path):
        """recovered.json named a config_file; watch unlinked whatever it named."""
        inst = cluster(recover=chunk_image_files(10), own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        victim = tmp_path / "precious.conf"
        victim.write_text("not lifeboat's\n")
        manifest_path = inst.run_dir / "recovered.json"
        manifest = json.loads(manifest_path.read_text())
        snippet = Path(manifest["volumes"][0]["config_file"])
        assert snippet == inst.conf_dir / f"{old}.conf" and snippet.exists()
        manifest["volumes"][0]["config_file"] = str(victim)
        manifest_path.write_text(json.dumps(manifest))
        for c in chunk_files(inst.recovery_path()):
                c.unlink()

        r = run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        assert inst.state()["recovered"][0]["state"] == "released"
        assert victim.read_text() == "not lifeboat's\n"
        assert not snippet.exists()             # its own snippet is what goes
        assert f"names {victim} as the fluentd config of {old}, not its snippet {snippet}: not removed" in r.stderr


def test_recovered_volume_deeper_than_the_scanner_cannot_be_confirmed_drained(cluster):
        """A tree deeper than the chunk scanner descends failed every scan: watch.json said
        "draining" with 0 chunk files for ever, and nothing told a human."""
        deep = "s3/" + "/".join(f"d{i}" for i in range(20))
        inst = cluster(recover={f"{deep}/buffer.b0123456789abcdef.log": "a record\n"}, own=False, LIFEBOAT_SETTLE="0")
        old = inst.old_volume
        mnt = inst.recovery_path()
        for _ in range(2):
                r = run_lifeboat(inst.env, "watch", "--once")
                assert r.returncode == 0, r.stderr
        [rec] = inst.state()["recovered"]
        assert rec["state"] == "unconfirmed", rec
        assert rec["reason"] == "nested deeper than 16 directory levels: cannot confirm it is drained"
        assert inst.tags(old)["lifeboat:state"] == "dirty"
        assert any(m["target"] == str(mnt) for m in lbtest.mounts())
        assert inst.fake.volume(old)["attachments"]
        assert (mnt / deep / "buffer.b0123456789abcdef.log").exists()
        p = run_lifeboat(inst.env, "status")
        assert p.returncode == 0, p.stderr
        assert f"recovered {old} from i-0000000000000dead: CANNOT CONFIRM IT IS DRAINED: nested deeper than 16 " \
               "directory levels" in p.stdout
        doc = json_doc(run_lifeboat(inst.env, "status", "--json"))
        assert doc["watch"]["recovered"][0]["watch_state"] == "unconfirmed"

        # Flattened by a human: followed again, drained, released.
        lbtest.run(["rm", "-rf", str(mnt / "s3" / "d0")])
        r = run_lifeboat(inst.env, "watch", "--once")
        assert r.returncode == 0, r.stderr
        assert inst.state()["recovered"][0]["state"] == "released"
        assert inst.tags(old)["lifeboat:state"] == "flushed"


# --------------------------------------------------------------------------
# settings: no signed request in clear text, no key in a file others read
# --------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [
        ("AWS_ENDPOINT_URL_EC2", "http://192.0.2.10:4566"),
        ("AWS_ENDPOINT_URL", "http://ec2.us-east-1.amazonaws.com"),
        ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1@192.0.2.10/"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://192.0.2.10"),
])
def test_cleartext_endpoint_off_this_host_is_refused(fake, tmp_path, key, value):
        """AWS_ENDPOINT_URL(_EC2)=http://... sent signed requests and the session token in clear."""
        env = reap_env(fake, tmp_path)
        env.pop("AWS_ENDPOINT_URL_EC2")
        env[key] = value
        p = run_lifeboat(env, "reap", "--dry-run")
        assert p.returncode == EXIT_USAGE, p.stderr
        assert f"invalid value for {key}: '{value}' (expected an https:// URL, or http:// to" in p.stderr
        assert fake.requests() == []            # nothing was sent anywhere


def test_secret_in_a_config_file_others_may_read_warns(fake, tmp_path):
        env = reap_env(fake, tmp_path)
        conf = tmp_path / "lifeboat.conf"
        # The key pair comes whole from one source: both in the file.
        conf.write_text(f"AWS_ACCESS_KEY_ID={env.pop('AWS_ACCESS_KEY_ID')}\n"
                        f"AWS_SECRET_ACCESS_KEY={env.pop('AWS_SECRET_ACCESS_KEY')}\n")
        conf.chmod(0o644)
        p = run_lifeboat(env, "--config", str(conf), "reap", "--dry-run")
        assert p.returncode == 0, p.stderr
        assert f"{conf} holds AWS credentials and other users may read it (mode 0644): chmod 600 {conf}" in p.stderr
        assert lbtest.STATIC_SECRET_KEY not in p.stderr + p.stdout
        conf.chmod(0o600)
        p = run_lifeboat(env, "--config", str(conf), "reap", "--dry-run")
        assert p.returncode == 0 and "other users may read" not in p.stderr, p.stderr
