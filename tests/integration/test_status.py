# SPDX-License-Identifier: MIT
"""lifeboat status, and the foundation under it, against the fake AWS: output and JSON,
SigV4 accepted, retries on throttling and 5xx, clear errors on malformed answers and an
unreachable IMDS, and secrets never printed."""

from __future__ import annotations

import json
import socket
import time

import lbtest
from lbtest import STATIC_SECRET_KEY, run_lifeboat


def group_tags(state: str | None = None, group: str = "test-group") -> dict[str, str]:
        return lbtest.group_tags(group, state)


def populate(fake: lbtest.FakeAWS) -> tuple[dict, dict[str, str]]:
        """One instance in us-east-1a and a few group volumes around it."""
        inst = fake.add_instance(availability_zone="us-east-1a")
        vols = {
                "dirty": fake.add_volume(availability_zone="us-east-1a", tags=group_tags("dirty")),
                "flushed": fake.add_volume(availability_zone="us-east-1a", tags=group_tags("flushed")),
                "quarantined": fake.add_volume(availability_zone="us-east-1a",
                                               tags={**group_tags("quarantined"), "lifeboat:reason": "blank device"}),
                "unmarked": fake.add_volume(availability_zone="us-east-1a", tags=group_tags()),
                "other_az": fake.add_volume(availability_zone="us-east-1b", tags=group_tags("dirty")),
                "other_group": fake.add_volume(availability_zone="us-east-1a", tags=group_tags("dirty", "other")),
        }
        return inst, vols


def status_json(fake: lbtest.FakeAWS, env: dict[str, str], *extra: str) -> dict:
        p = run_lifeboat(env, *extra, "status", "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)


def test_status_json_lists_group_volumes_of_this_az(fake):
        inst, vols = populate(fake)
        doc = status_json(fake, fake.env_for(inst))
        assert doc["instance"]["instance_id"] == inst["instance_id"]
        assert doc["instance"]["availability_zone"] == "us-east-1a"
        assert doc["instance"]["region"] == "us-east-1"
        assert doc["instance"]["lifecycle"] == "spot"
        assert doc["group"] == "test-group"
        by_id = {v["volume_id"]: v for v in doc["volumes"]}
        assert set(by_id) == {vols["dirty"], vols["flushed"], vols["quarantined"], vols["unmarked"]}
        assert by_id[vols["dirty"]]["lifeboat_state"] == "dirty"
        assert by_id[vols["quarantined"]]["reason"] == "blank device"
        assert by_id[vols["unmarked"]]["lifeboat_state"] == "unmarked"
        assert doc["counts"] == {"dirty": 1, "flushed": 1, "quarantined": 1, "relocated": 0, "unmarked": 1,
                                 "unknown": 0}
        assert all(v["attached_here"] is False for v in doc["volumes"])


def test_status_table_is_readable(fake):
        inst, vols = populate(fake)
        p = run_lifeboat(fake.env_for(inst), "status")
        assert p.returncode == 0, p.stderr
        assert f"Instance  {inst['instance_id']} (spot, m5.large)" in p.stdout
        assert "Group     test-group" in p.stdout
        for key in ("dirty", "flushed", "quarantined", "unmarked"):
                assert vols[key] in p.stdout
        assert vols["other_az"] not in p.stdout
        assert vols["other_group"] not in p.stdout
        assert "1 dirty, 1 flushed, 1 quarantined, 1 unmarked" in p.stdout


def test_status_shows_volumes_attached_here(fake):
        inst = fake.add_instance(availability_zone="us-east-1a",
                                 buffer={"device": "/dev/sdf", "size_gib": 1, "tags": group_tags("dirty")})
        doc = status_json(fake, fake.env_for(inst))
        [vol] = doc["volumes"]
        assert vol["volume_id"] == inst["buffer_volume_id"]
        assert vol["attached_here"] is True
        assert vol["attachments"][0]["device"] == "/dev/sdf"
        assert vol["attachments"][0]["state"] == "attached"


def test_role_credentials_from_imds_are_signed_and_accepted(fake):
        inst, _ = populate(fake)
        fake.reset_requests()
        doc = status_json(fake, fake.env_for(inst, use_role=True))
        assert len(doc["volumes"]) == 4
        paths = [r["action"] for r in fake.requests(service="imds")]
        assert any("iam/security-credentials/" in p for p in paths), paths
        ec2 = fake.requests(service="ec2", action="DescribeVolumes")
        assert ec2 and all(r["status"] == 200 for r in ec2)
        assert all(r["instance"].startswith("ASIA") for r in ec2), ec2


def test_bad_secret_is_an_auth_failure_with_a_clear_message(fake):
        inst, _ = populate(fake)
        env = fake.env_for(inst)
        env["AWS_SECRET_ACCESS_KEY"] = "wrong/secret/key/wrong/secret/key/0000000"
        p = run_lifeboat(env, "status")
        assert p.returncode == 3
        assert "AuthFailure" in p.stderr
        assert env["AWS_SECRET_ACCESS_KEY"] not in p.stderr + p.stdout
        # An auth failure is not retried as if it were transient.
        assert len(fake.requests(service="ec2", action="DescribeVolumes")) <= 2


def test_throttling_is_retried(fake):
        inst, _ = populate(fake)
        fake.fault(action="DescribeVolumes", kind="throttle", count=2)
        fake.reset_requests()
        doc = status_json(fake, fake.env_for(inst))
        assert len(doc["volumes"]) == 4
        statuses = [r["status"] for r in fake.requests(service="ec2", action="DescribeVolumes")]
        assert statuses == [503, 503, 200]


def test_5xx_is_retried_then_surfaced(fake):
        inst, _ = populate(fake)
        fake.fault(action="DescribeVolumes", kind="5xx", count=-1)
        fake.reset_requests()
        p = run_lifeboat(fake.env_for(inst), "status")
        assert p.returncode == 3
        assert "DescribeVolumes failed" in p.stderr
        assert "InternalError" in p.stderr or "Unavailable" in p.stderr
        # Standard retry mode: three attempts in all.
        assert len(fake.requests(service="ec2", action="DescribeVolumes")) == 3


def test_malformed_xml_is_a_clear_error(fake):
        inst, _ = populate(fake)
        fake.fault(action="DescribeVolumes", kind="malformed", count=-1)
        p = run_lifeboat(fake.env_for(inst), "status")
        assert p.returncode == 3
        assert "DescribeVolumes failed" in p.stderr
        assert p.stderr.count("\n") <= 3, p.stderr
        assert "Sanitizer" not in p.stderr


def test_truncated_answer_is_retried(fake):
        inst, _ = populate(fake)
        fake.fault(action="DescribeVolumes", kind="truncate", count=1)
        doc = status_json(fake, fake.env_for(inst))
        assert len(doc["volumes"]) == 4


def test_malformed_identity_document_is_a_clear_error(fake):
        inst, _ = populate(fake)
        fake.fault(action="imds", kind="malformed", count=-1, path="instance-identity/document")
        p = run_lifeboat(fake.env_for(inst), "status")
        assert p.returncode == 3
        assert "identity" in p.stderr
        assert "Sanitizer" not in p.stderr


def closed_port() -> int:
        with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]


def test_imds_unreachable_fails_fast_with_one_line(fake):
        inst, _ = populate(fake)
        env = fake.env_for(inst)
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
        started = time.monotonic()
        p = run_lifeboat(env, "status")
        took = time.monotonic() - started
        assert p.returncode == 3
        assert took < 10, f"took {took:.1f} s to give up on an unreachable IMDS"
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, p.stderr
        assert "IMDS" in lines[0]


def test_imds_disabled_is_reported(fake):
        inst, _ = populate(fake)
        env = fake.env_for(inst)
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        p = run_lifeboat(env, "status")
        assert p.returncode == 3
        assert "AWS_EC2_METADATA_DISABLED" in p.stderr


def test_secrets_never_printed_even_verbose(fake):
        inst, _ = populate(fake)
        env = fake.env_for(inst)
        env["AWS_SESSION_TOKEN"] = ""
        p = run_lifeboat(env, "--verbose", "status", "--json")
        assert p.returncode == 0, p.stderr
        assert STATIC_SECRET_KEY not in p.stdout + p.stderr
        # Role credentials: neither the secret nor the token may show up.
        role_env = fake.env_for(inst, use_role=True)
        p = run_lifeboat(role_env, "--verbose", "status")
        assert p.returncode == 0, p.stderr
        token = fake.imds_token(inst, ttl=60)
        creds = json.loads(fake.imds(inst, "/latest/meta-data/iam/security-credentials/lifeboat-role",
                                     token=token).text)
        for secret in (creds["SecretAccessKey"], creds["Token"]):
                assert secret not in p.stdout + p.stderr


def test_invalid_setting_names_the_key(fake):
        inst, _ = populate(fake)
        env = fake.env_for(inst)
        env["LIFEBOAT_POLL_INTERVAL"] = "soon"
        p = run_lifeboat(env, "status")
        assert p.returncode == 2
        assert "LIFEBOAT_POLL_INTERVAL" in p.stderr


def test_config_file_is_read_and_flags_win(fake, tmp_path):
        inst, vols = populate(fake)
        env = fake.env_for(inst)
        del env["LIFEBOAT_GROUP"]
        conf = tmp_path / "lifeboat.conf"
        conf.write_text("# written by user-data\nLIFEBOAT_GROUP=other\n")
        doc = status_json(fake, env, "--config", str(conf))
        assert doc["group"] == "other"
        assert [v["volume_id"] for v in doc["volumes"]] == [vols["other_group"]]
        env["LIFEBOAT_GROUP"] = "test-group"  # environment beats the file
        doc = status_json(fake, env, "--config", str(conf))
        assert doc["group"] == "test-group"


def test_group_defaults_to_ecs_cluster(fake, tmp_path):
        inst, vols = populate(fake)
        env = fake.env_for(inst)
        del env["LIFEBOAT_GROUP"]
        ecs = tmp_path / "ecs.config"
        ecs.write_text("ECS_CLUSTER=other\nECS_ENABLE_SPOT_INSTANCE_DRAINING=true\n")
        env["LIFEBOAT_ECS_CONFIG"] = str(ecs)
        doc = status_json(fake, env)
        assert doc["group"] == "other"


def test_missing_config_named_by_flag_is_an_error(fake, tmp_path):
        inst, _ = populate(fake)
        p = run_lifeboat(fake.env_for(inst), "--config", str(tmp_path / "nope.conf"), "status")
        assert p.returncode == 2
        assert "nope.conf" in p.stderr


def test_usage_errors(fake):
        inst, _ = populate(fake)
        env = fake.env_for(inst)
        p = run_lifeboat(env, "frobnicate")
        assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr
        p = run_lifeboat(env, "status", "--bogus")
        assert p.returncode == 2
        p = run_lifeboat(env, "status", "--help")
        assert p.returncode == 0 and "Usage: lifeboat status" in p.stdout
        p = run_lifeboat(env, "version")
        assert p.returncode == 0 and p.stdout.startswith("lifeboat ")


def test_group_fluentd_cannot_carry_is_refused_before_any_aws_call(fake, tmp_path):
        """One rule for the group: what a fluentd snippet could not carry is a configuration
        error at start (exit 2, naming the key), not a volume attached, mounted and handed back
        dirty at every boot."""
        inst, vols = populate(fake)
        for bad in ("logs #2", "logs-#2", "team/logs"):
                env = fake.env_for(inst)
                env["LIFEBOAT_GROUP"] = bad
                before = len(fake.requests())
                for command in (["status"], ["boot"], ["reap", "--dry-run"]):
                        p = run_lifeboat(env, *command)
                        assert p.returncode == 2, (bad, command, p.stderr)
                        assert "LIFEBOAT_GROUP" in p.stderr, p.stderr
                assert len(fake.requests()) == before, "nothing may reach IMDS or EC2"
        # The same value as ECS_CLUSTER (the default group) is refused the same way.
        env = fake.env_for(inst)
        del env["LIFEBOAT_GROUP"]
        ecs = tmp_path / "ecs.config"
        ecs.write_text("ECS_CLUSTER=logs #2\n")
        env["LIFEBOAT_ECS_CONFIG"] = str(ecs)
        p = run_lifeboat(env, "boot")
        assert p.returncode == 2 and "ECS_CLUSTER" in p.stderr and "LIFEBOAT_GROUP" in p.stderr
        assert fake.volume(vols["dirty"])["state"] == "available"
