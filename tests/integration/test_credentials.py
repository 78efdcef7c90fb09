# SPDX-License-Identifier: MIT
"""The credential chain of the real binary against the fake AWS: each source (the environment,
web identity through the fake STS, profile files, the fake container endpoint, the instance role
from the fake IMDS) signs with its own keys (the fake checks every signature and logs the key),
their order, refresh before expiry, malformed answers and files, what --verbose and status say,
and that no secret is ever printed. Mostly `lifeboat reap`, the command that runs anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import lbtest
from lbtest import run_lifeboat

GROUP = "test-group"
AZ = "us-east-1a"
ROLE = "arn:aws:iam::123456789012:role/lifeboat-reaper"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImxpZmVib2F0In0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b3BzOnJlYXAifQ.c2lnbmF0dXJl"
EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def base_env(fake: lbtest.FakeAWS, tmp_path: Path, **more: str) -> dict[str, str]:
        """reap off EC2 with no credentials at all: a region, the fake's endpoints, IMDS off, profile
        files that do not exist (never the developer's ~/.aws)."""
        home = tmp_path / "reaper"
        home.mkdir(exist_ok=True)
        env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(home),
                "AWS_ENDPOINT_URL_EC2": fake.ec2_endpoint,
                "AWS_REGION": fake.region,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(home / "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
                "LIFEBOAT_GROUP": GROUP,
                "LIFEBOAT_CONFIG": str(home / "lifeboat.conf"),         # does not exist
                "LIFEBOAT_ECS_CONFIG": str(home / "ecs.config"),        # does not exist
                "LIFEBOAT_RUN_DIR": str(home / "run"),
        }
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
                if name in os.environ:
                        env[name] = os.environ[name]
        env.update(more)
        return env


def container_env(fake: lbtest.FakeAWS, tmp_path: Path, **more: str) -> tuple[dict[str, str], dict[str, Any]]:
        """Only an ECS task's credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, with the relative
        URI's base pointed at the fake's container endpoint."""
        role = fake.container_role()
        return base_env(fake, tmp_path, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=role["path"],
                        LIFEBOAT_CONTAINER_ENDPOINT=fake.container_endpoint, **more), role


def web_identity_env(fake: lbtest.FakeAWS, tmp_path: Path, token_text: str = JWT + "\n",
                     **more: str) -> dict[str, str]:
        """An EKS/IRSA-style setup: a token file (ending in a line break, as written by kubelet's
        neighbours), the role, and STS at the fake."""
        token_file = tmp_path / "web-identity-token"
        token_file.write_text(token_text)
        fake.web_identity(JWT, [ROLE])
        return base_env(fake, tmp_path, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file), AWS_ROLE_ARN=ROLE,
                        AWS_ENDPOINT_URL_STS=fake.sts_endpoint, **more)


def flushed_volume(fake: lbtest.FakeAWS) -> str:
        return fake.add_volume(availability_zone=AZ, tags=lbtest.group_tags(GROUP, "flushed",
                                                                            flushed_at=lbtest.iso_in(-3600)))


def reap(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
        p = run_lifeboat(env, *args, "reap", "--json")
        try:
                doc = json.loads(p.stdout)
        except json.JSONDecodeError:
                raise AssertionError(f"reap --json printed no JSON (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
        assert doc["exit_code"] == p.returncode, doc
        return p, doc


def settled_requests(fake: lbtest.FakeAWS, **kw: Any) -> list[dict[str, Any]]:
        """The request log once it stops growing (the fake logs right after answering)."""
        seen = -1
        while True:
                log = fake.requests()
                if len(log) == seen:
                        return fake.requests(**kw)
                seen = len(log)
                time.sleep(0.1)


def signers(fake: lbtest.FakeAWS) -> list[str]:
        """The access key of every EC2 request, in order."""
        return [r["instance"] for r in settled_requests(fake, service="ec2")]


def container_secret(fake: lbtest.FakeAWS, role: dict[str, Any]) -> dict[str, Any]:
        """What the endpoint hands out now (the same as lifeboat got, until shortly before expiry)."""
        return json.loads(lbtest.http("GET", role["url"]).body)


def assert_nothing_secret(p: subprocess.CompletedProcess, *secrets: str) -> None:
        out = p.stdout + p.stderr
        for s in secrets:
                assert s and s not in out, f"a secret was printed: {s[:12]}..."


# --------------------------------------------------------------------------
# each source signs with its own keys
# --------------------------------------------------------------------------

def test_reap_with_only_container_credentials_deletes_a_flushed_volume(fake, tmp_path):
        """The central reaper as an ECS scheduled task: the task role's credentials, no IMDS."""
        env, role = container_env(fake, tmp_path)
        vid = flushed_volume(fake)

        p, doc = reap(env, "--verbose")
        assert p.returncode == EXIT_OK, p.stderr
        assert doc["counts"]["deleted"] == 1 and doc["volumes"][0]["volume_id"] == vid
        assert fake.volume(vid)["state"] == "deleted"

        creds = container_secret(fake, role)
        [served] = fake.container_roles()[0]["served"][:1]
        assert creds["AccessKeyId"] == served
        assert set(signers(fake)) == {served}, "every EC2 request is signed with the task role's keys"
        assert [r["status"] for r in settled_requests(fake, action="DeleteVolume")] == [200]
        assert settled_requests(fake, service="imds") == []
        # Past its first segment the path guards the endpoint: it stays out of the log.
        first = "/" + role["path"].split("/")[1]
        assert f"AWS credentials from container credentials at {fake.container_endpoint}{first}/..." in p.stderr
        assert role["path"] not in p.stderr
        assert_nothing_secret(p, creds["SecretAccessKey"], creds["Token"])


def test_web_identity(fake, tmp_path):
        env = web_identity_env(fake, tmp_path)
        vid = flushed_volume(fake)

        p, doc = reap(env, "--verbose")
        assert p.returncode == EXIT_OK, p.stderr
        assert fake.volume(vid)["state"] == "deleted"
        [call] = fake.sts_calls()
        assert call["result"] == "ok" and call["role_arn"] == ROLE
        assert call["token"] == JWT, "the token file's line break is not sent"
        assert call["session_name"].startswith("lifeboat-") and call["session_name"][9:].isdigit()
        assert set(signers(fake)) == {call["access_key_id"]}
        [sts] = settled_requests(fake, service="sts")
        assert sts["instance"] is None, "AssumeRoleWithWebIdentity goes out unsigned"
        assert "AWS credentials from web identity: arn:aws:sts::123456789012:assumed-role/lifeboat-reaper/lifeboat-" \
                in p.stderr
        assert_nothing_secret(p, call["secret_access_key"], call["session_token"], JWT)


def test_profile_files_and_their_region(fake, tmp_path):
        """A machine with AWS_PROFILE: keys from the shared credentials file, the region from the
        config file (no AWS_REGION, no IMDS)."""
        env = base_env(fake, tmp_path, AWS_PROFILE="ops")
        del env["AWS_REGION"]
        Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
                "# lifeboat's reaper\n[default]\naws_access_key_id = AKIAUNUSED\naws_secret_access_key = nope\n\n"
                f"[ops]\naws_access_key_id = {lbtest.STATIC_ACCESS_KEY}\n"
                f"aws_secret_access_key = {lbtest.STATIC_SECRET_KEY}\n")
        Path(env["AWS_CONFIG_FILE"]).write_text(f"[default]\nregion = eu-west-3\n\n[profile ops]\nregion = {fake.region}\n")
        vid = flushed_volume(fake)

        p, doc = reap(env, "--verbose")
        assert p.returncode == EXIT_OK, p.stderr
        assert doc["region"] == fake.region
        assert fake.volume(vid)["state"] == "deleted"
        assert set(signers(fake)) == {lbtest.STATIC_ACCESS_KEY}
        assert f"AWS credentials from profile ops in {env['AWS_SHARED_CREDENTIALS_FILE']}" in p.stderr
        assert f"Region {fake.region} from profile ops in {env['AWS_CONFIG_FILE']}" in p.stderr
        assert_nothing_secret(p, lbtest.STATIC_SECRET_KEY)


def test_malformed_profile_files_name_file_and_line(fake, tmp_path):
        env = base_env(fake, tmp_path)
        creds = Path(env["AWS_SHARED_CREDENTIALS_FILE"])
        for text, line, what in [
                ("[default]\naws_access_key_id = AKIAEXAMPLE\n", 2,
                 "profile default has aws_access_key_id but no aws_secret_access_key"),
                ("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t-value\n"
                 "aws_secret_access_key = again\n", 4, "aws_secret_access_key is set twice in [default]"),
                ("aws_access_key_id = AKIAEXAMPLE\n", 1, "a key before any [section]"),
                ("[default]\naws_access_key_id = AKIAEXAMPLE\n  s3cr3t-value on its own line\nbroken line\n", 4,
                 "expected 'key = value', '[section]' or a comment"),
        ]:
                creds.write_text(text)
                p, doc = reap(env)
                assert p.returncode == EXIT_USAGE, (text, p.stderr)
                assert f"{creds}:{line}: {what}" in p.stderr, p.stderr
                assert f"{creds}:{line}: {what}" in doc["error"]
                assert "s3cr3t-value" not in p.stderr + p.stdout
        assert signers(fake) == []


def test_instance_role_is_the_last_source(fake, tmp_path):
        inst = fake.add_instance(availability_zone=AZ)
        env = base_env(fake, tmp_path, AWS_EC2_METADATA_DISABLED="false",
                       AWS_EC2_METADATA_SERVICE_ENDPOINT=inst["imds_endpoint"])
        p, doc = reap(env, "--verbose")
        assert p.returncode == EXIT_OK, p.stderr
        [key] = set(signers(fake))
        assert key.startswith("ASIA")
        paths = [r["action"] for r in settled_requests(fake, service="imds")]
        assert paths == ["/latest/api/token", "/latest/meta-data/iam/security-credentials/",
                         "/latest/meta-data/iam/security-credentials/lifeboat-role"]
        assert "AWS credentials from the instance role lifeboat-role (IMDS)" in p.stderr


# --------------------------------------------------------------------------
# order, errors, refresh
# --------------------------------------------------------------------------

def test_precedence(fake, tmp_path):
        """env > web identity > profile > container > instance role: with every source set up, each
        run signs with the first; then that one is taken away."""
        inst = fake.add_instance(availability_zone=AZ)
        role = fake.container_role()
        env = web_identity_env(fake, tmp_path, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=role["path"],
                               LIFEBOAT_CONTAINER_ENDPOINT=fake.container_endpoint,
                               AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=inst["imds_endpoint"])
        # The profile's keys: temporary ones the fake issued for another container role.
        other = fake.container_role()
        minted = container_secret(fake, other)
        Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
                f"[default]\naws_access_key_id = {minted['AccessKeyId']}\n"
                f"aws_secret_access_key = {minted['SecretAccessKey']}\naws_session_token = {minted['Token']}\n")
        env["AWS_ACCESS_KEY_ID"] = lbtest.STATIC_ACCESS_KEY
        env["AWS_SECRET_ACCESS_KEY"] = lbtest.STATIC_SECRET_KEY

        def signer() -> str:
                fake.reset_requests()
                p, _ = reap(env)
                assert p.returncode == EXIT_OK, p.stderr
                [key] = set(signers(fake))
                return key

        assert signer() == lbtest.STATIC_ACCESS_KEY
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        assert signer() == fake.sts_calls()[-1]["access_key_id"]
        del env["AWS_WEB_IDENTITY_TOKEN_FILE"]
        assert signer() == minted["AccessKeyId"]
        os.unlink(env["AWS_SHARED_CREDENTIALS_FILE"])
        assert signer() == container_secret(fake, role)["AccessKeyId"]
        del env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
        key = signer()
        assert key.startswith("ASIA") and settled_requests(fake, service="imds")
        assert len(fake.sts_calls()) == 1


def test_no_credentials_says_what_was_tried(fake, tmp_path):
        env = base_env(fake, tmp_path)
        p, doc = reap(env)
        assert p.returncode == EXIT_UNAVAILABLE
        expected = ("no AWS credentials: environment: AWS_ACCESS_KEY_ID not set; web identity: "
                    "AWS_WEB_IDENTITY_TOKEN_FILE not set; profile default: "
                    f"{env['AWS_SHARED_CREDENTIALS_FILE']} and {env['AWS_CONFIG_FILE']} not found; container: "
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set; instance role: IMDS disabled "
                    "(AWS_EC2_METADATA_DISABLED)")
        assert expected in p.stderr
        assert doc["error"] == expected
        assert "instance metadata service unavailable" not in p.stderr
        assert [r for r in settled_requests(fake)] == []


def test_a_failing_source_stops_the_chain(fake, tmp_path):
        """A configured source that fails is an error: never a silent fall-through to another
        identity (here the environment's keys would have worked)."""
        env, role = container_env(fake, tmp_path)
        fake.fault(action="container", kind="malformed", count=1)
        p, doc = reap(env)
        assert p.returncode == EXIT_UNAVAILABLE
        assert "AWS credentials from container: " in p.stderr
        assert "answered something else than credentials: not a JSON object" in doc["error"]

        guarded = fake.container_role(token="pod-token-1")
        env = base_env(fake, tmp_path, AWS_CONTAINER_CREDENTIALS_FULL_URI=guarded["url"])
        p, doc = reap(env)
        assert p.returncode == EXIT_UNAVAILABLE
        shown = guarded["url"].rsplit("/", 2)[0] + "/..."     # http://host:port/v2/...
        assert f"{shown} answered HTTP 400: Service account token cannot be empty" in doc["error"]
        assert guarded["url"] not in doc["error"]
        token_file = tmp_path / "pod-token"
        token_file.write_text("pod-token-2\n")
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(token_file)
        p, doc = reap(env)
        assert "answered HTTP 403: Access Denied." in doc["error"]
        token_file.write_text("pod-token-1\n")          # a rotated token is read at the next run
        p, doc = reap(env, "--verbose")
        assert p.returncode == EXIT_OK, p.stderr
        assert "with the token of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" in p.stderr
        assert_nothing_secret(p, "pod-token-1", container_secret_for(guarded, "pod-token-1")["SecretAccessKey"])

        fake.reset_requests()
        env = web_identity_env(fake, tmp_path, AWS_ACCESS_KEY_ID=lbtest.STATIC_ACCESS_KEY)
        p, doc = reap(env)
        assert p.returncode == EXIT_USAGE, "half a key pair is a configuration error"
        assert "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not" in doc["error"]
        del env["AWS_ACCESS_KEY_ID"]
        for token, code in [("eyJ.unknown.token", "InvalidIdentityToken"), ("eyJ.expired.token", "ExpiredTokenException")]:
                if code == "ExpiredTokenException":
                        fake.web_identity(token, [ROLE], expired=True)
                Path(env["AWS_WEB_IDENTITY_TOKEN_FILE"]).write_text(token)
                p, doc = reap(env)
                assert p.returncode == EXIT_UNAVAILABLE, p.stderr
                assert f"AWS credentials from web identity: STS refused the token for {ROLE}: {code}: " in doc["error"]
        Path(env["AWS_WEB_IDENTITY_TOKEN_FILE"]).write_text(JWT)
        fake.fault(action="AssumeRoleWithWebIdentity", kind="malformed", count=1)
        p, doc = reap(env)
        assert p.returncode == EXIT_UNAVAILABLE
        assert f"STS at {fake.sts_endpoint}/ answered AssumeRoleWithWebIdentity with something else than credentials" \
                in doc["error"]
        assert signers(fake) == []


def container_secret_for(role: dict[str, Any], token: str) -> dict[str, Any]:
        return json.loads(lbtest.http("GET", role["url"], headers={"Authorization": token}).body)


def test_temporary_credentials_are_refreshed_before_they_expire(fake, tmp_path):
        """Credentials with less than 10 minutes left are fetched again before the next request,
        then at most once a minute while the source keeps handing out such short ones (as IMDS
        does until 5 minutes ahead): STS hands out 5-minute ones here, so reap asks STS again
        before its first EC2 request, signs with what it got, and does not ask STS for every
        request after that."""
        fake.config(sts_credential_ttl_s=300)
        env = web_identity_env(fake, tmp_path)
        vid = flushed_volume(fake)
        p, doc = reap(env)
        assert p.returncode == EXIT_OK, p.stderr
        assert fake.volume(vid)["state"] == "deleted"
        calls = fake.sts_calls()
        issued = [c["access_key_id"] for c in calls]
        used = signers(fake)
        assert len(calls) == 2 and len(set(issued)) == 2, calls
        assert set(used) == {issued[1]}, "the first set was replaced before its first use"
        assert len(used) >= 2, "reap made several EC2 requests, all with the refreshed set"

        # The same for container credentials (the endpoint hands out new ones within 5 minutes).
        fake.reset_requests()
        fake.config(container_credential_ttl_s=200)
        env, role = container_env(fake, tmp_path)
        vid = flushed_volume(fake)
        p, doc = reap(env)
        assert p.returncode == EXIT_OK, p.stderr
        served = fake.container_roles()[-1]["served"]
        assert len(served) == 2 and set(signers(fake)) == {served[1]}, served

        # Long-lived ones are fetched once.
        fake.reset_requests()
        fake.config(container_credential_ttl_s=21600)
        env, role = container_env(fake, tmp_path)
        flushed_volume(fake)
        p, doc = reap(env)
        assert p.returncode == EXIT_OK, p.stderr
        assert len(fake.container_roles()[-1]["served"]) == 1


# --------------------------------------------------------------------------
# status and --verbose say where credentials came from; nothing secret
# --------------------------------------------------------------------------

def test_status_says_where_credentials_came_from(fake, tmp_path):
        inst = fake.add_instance(availability_zone=AZ)
        env = fake.env_for(inst, use_role=True)
        p = run_lifeboat(env, "status")
        assert p.returncode == EXIT_OK, p.stderr
        assert "Creds     the instance role lifeboat-role (IMDS), temporary until " in p.stdout
        p = run_lifeboat(env, "status", "--json")
        creds = json.loads(p.stdout)["credentials"]
        assert creds["source"] == "instance-role" and creds["origin"] == "the instance role lifeboat-role (IMDS)"
        assert creds["expiration"].endswith("Z")

        role = fake.container_role()
        env.update(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=role["path"], LIFEBOAT_CONTAINER_ENDPOINT=fake.container_endpoint)
        p = run_lifeboat(env, "--verbose", "status", "--json")
        assert p.returncode == EXIT_OK, p.stderr
        creds = json.loads(p.stdout)["credentials"]
        first = "/" + role["path"].split("/")[1]
        assert creds["source"] == "container" and f"{fake.container_endpoint}{first}/..." in creds["origin"]
        assert role["path"] not in p.stdout + p.stderr
        secret = container_secret(fake, role)
        assert_nothing_secret(p, secret["SecretAccessKey"], secret["Token"])

        env = fake.env_for(inst)
        p = run_lifeboat(env, "status", "--json")
        assert json.loads(p.stdout)["credentials"] == {"source": "environment", "expiration": None,
                                                      "origin": "the environment (AWS_ACCESS_KEY_ID)"}
        p = run_lifeboat(env, "status")
        assert "Creds     the environment (AWS_ACCESS_KEY_ID), long-term keys" in p.stdout


def test_nothing_secret_in_verbose_output_of_any_source(fake, tmp_path):
        """--verbose logs every request, decision and setting: still no secret key, session token,
        web identity token or Authorization token."""
        guarded = fake.container_role(token="Bearer pod-identity-secret")
        env = web_identity_env(fake, tmp_path, AWS_CONTAINER_CREDENTIALS_FULL_URI=guarded["url"],
                               AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer pod-identity-secret")
        Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text("[default]\nregion = us-east-1\n")
        p, _ = reap(env, "--verbose")
        assert p.returncode == EXIT_OK, p.stderr
        assert "setting AWS_CONTAINER_AUTHORIZATION_TOKEN=(set)" in p.stderr
        del env["AWS_WEB_IDENTITY_TOKEN_FILE"]
        q, _ = reap(env, "--verbose")
        assert q.returncode == EXIT_OK, q.stderr
        call = fake.sts_calls()[0]
        container = container_secret_for(guarded, "Bearer pod-identity-secret")
        for run in (p, q):
                assert_nothing_secret(run, call["secret_access_key"], call["session_token"], JWT,
                                      "pod-identity-secret", container["SecretAccessKey"], container["Token"])
