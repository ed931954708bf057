"""recsys-mwaa's AWS errors are one line saying what to set or check (exit 2, no traceback),
and the launcher runs in the project's .venv whatever python3 is on PATH.

No region / no credentials / no profile run the real CLI in a subprocess with no AWS
configuration at all; AccessDenied, ResourceNotFoundException and other ClientErrors come
from botocore's Stubber, in process (no network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = REPO / "mwaa" / "recsys-mwaa"
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import cli, packaging  # ruff: ignore[module-import-not-at-top-of-file]

ENV_NAME, BUCKET = "recsys-env", "mwaa-123456789012-recsys"


def no_aws_env(**extra: str) -> dict[str, str]:
    """This process's environment without any AWS configuration (files, variables, instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return env | extra


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packaging.build(tmp_path_factory.mktemp("package") / "dist").root


def commands(dist: Path) -> dict[str, list[str]]:
    return {
        "status": ["status", "--environment", ENV_NAME],
        "rollback": ["rollback", "--environment", ENV_NAME, "--bucket", BUCKET, "--dry-run"],
        "deploy": ["deploy", "--environment", ENV_NAME, "--bucket", BUCKET, "--dry-run", "--dist", str(dist)],
    }


def run_launcher(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAUNCHER), *args], capture_output=True, text=True, env=env, timeout=120)


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    return lines[0]


@pytest.mark.parametrize("command", ["status", "rollback", "deploy"])
@pytest.mark.parametrize(
    ("extra_args", "expected"),
    [
        ([], "FAIL: no AWS region: set AWS_REGION or AWS_DEFAULT_REGION (or region in the profile) or pass --region"),
        (["--region", "eu-west-1"], "FAIL: no AWS credentials (none found): set AWS_ACCESS_KEY_ID and"),
        (["--profile", "nope"], "FAIL: no AWS profile 'nope': check --profile / AWS_PROFILE"),
    ],
    ids=["no-region", "no-credentials", "no-such-profile"],
)
def test_no_aws_configuration_gives_one_line_and_exit_2(dist, command, extra_args, expected) -> None:
    done = run_launcher(*commands(dist)[command], *extra_args, env=no_aws_env())
    assert "Traceback" not in done.stdout + done.stderr
    assert one_line(done.stderr).startswith(expected)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing was planned: the error came first


@pytest.fixture
def stubbed(monkeypatch):
    """cli's S3 and MWAA clients, answered by botocore Stubbers (all stubbed responses must be used)."""
    keys = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3, mwaa = boto3.client("s3", **keys), boto3.client("mwaa", **keys)
    monkeypatch.setattr(cli, "_clients", lambda args: (s3, mwaa))
    with Stubber(s3) as s3_stub, Stubber(mwaa) as mwaa_stub:
        yield s3_stub, mwaa_stub
        s3_stub.assert_no_pending_responses()
        mwaa_stub.assert_no_pending_responses()


def main_result(capsys, args: list[str]) -> tuple[int, str]:
    code = cli.main([*args, "--region", "us-east-1"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, one_line(err)


DENIED = "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: airflow:GetEnvironment"


def test_access_denied_on_the_environment_names_the_call_and_what_to_check(stubbed, capsys, dist) -> None:
    _, mwaa_stub = stubbed
    mwaa_stub.add_client_error("get_environment", "AccessDeniedException", DENIED, 403)
    code, line = main_result(capsys, commands(dist)["status"])
    assert code == 2
    assert line == (
        "FAIL: access denied to GetEnvironment in us-east-1 for the credentials in use: grant it in their IAM "
        f"policy or use other credentials (aws sts get-caller-identity): {DENIED}"
    )


def test_access_denied_on_the_bucket_in_a_dry_run_deploy(stubbed, capsys, dist) -> None:
    s3_stub, _ = stubbed
    s3_stub.add_client_error("get_bucket_versioning", "AccessDenied", "Access Denied", 403)
    code, line = main_result(capsys, commands(dist)["deploy"])
    assert code == 2 and line.startswith("FAIL: access denied to GetBucketVersioning in us-east-1")


@pytest.mark.parametrize("command", ["status", "rollback", "deploy"])
def test_no_such_environment_says_check_environment_and_region(stubbed, capsys, dist, command) -> None:
    s3_stub, mwaa_stub = stubbed
    if command != "status":
        s3_stub.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": BUCKET})
    mwaa_stub.add_client_error("get_environment", "ResourceNotFoundException", f"Environment {ENV_NAME} not found", 404)
    code, line = main_result(capsys, commands(dist)[command])
    assert code == 2
    assert line == (
        f"FAIL: no MWAA environment '{ENV_NAME}' in us-east-1: check --environment and --region "
        "(aws mwaa list-environments --region us-east-1)"
    )


@pytest.mark.parametrize(
    ("code_", "expected"),
    [
        ("NoSuchBucket", f"FAIL: no bucket '{BUCKET}': check --bucket (the environment's source bucket)"),
        ("InvalidAccessKeyId", "FAIL: AWS refused the credentials in use (InvalidAccessKeyId): check or refresh them"),
        ("SlowDown", "FAIL: AWS GetBucketVersioning in us-east-1 failed: SlowDown: Please reduce your request rate.;"),
    ],
)
def test_other_client_errors_are_one_line(stubbed, capsys, dist, code_, expected) -> None:
    s3_stub, _ = stubbed
    s3_stub.add_client_error("get_bucket_versioning", code_, "Please\nreduce your request rate.", 400)
    code, line = main_result(capsys, commands(dist)["rollback"])
    assert code == 2 and line.startswith(expected)


def test_a_deploy_error_is_still_its_reason_and_exit_1(stubbed, capsys, dist) -> None:
    s3_stub, _ = stubbed
    s3_stub.add_response("get_bucket_versioning", {}, {"Bucket": BUCKET})
    code, line = main_result(capsys, commands(dist)["deploy"])
    assert code == 1 and line.startswith(f"FAIL: bucket {BUCKET} has versioning never enabled")


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_the_region_in_messages_is_the_one_resolved_from_the_environment(monkeypatch, variable) -> None:
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in no_aws_env(**{variable: "eu-west-1"}).items():
        monkeypatch.setenv(name, value)
    args = cli.argparse.Namespace(profile=None, region=None)
    cli._clients(args)  # makes clients only: no call, no network
    assert args.region == "eu-west-1"


# The launcher.


@pytest.fixture
def fake_python3_on_path(tmp_path: Path) -> str:
    """A PATH whose python3 is a script that exits 99."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text("#!/bin/sh\necho 'the python3 on PATH ran' >&2\nexit 99\n")
    fake.chmod(0o755)
    return f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"


def test_launcher_runs_in_the_venv_whatever_python3_is_on_path(fake_python3_on_path) -> None:
    env = no_aws_env(PATH=fake_python3_on_path)
    assert subprocess.run(["python3", "-c", ""], env=env).returncode == 99  # the fake is the one PATH finds
    done = run_launcher("status", "--environment", ENV_NAME, env=env)  # needs .venv's boto3
    assert "the python3 on PATH ran" not in done.stderr
    assert one_line(done.stderr).startswith("FAIL: no AWS region") and done.returncode == 2


def fake_repo(tmp_path: Path, with_venv: bool) -> Path:
    """The launcher in a repo whose .venv/bin/python (if any) reports how it was called."""
    tmp_path = tmp_path.resolve()
    (tmp_path / "repo" / "mwaa").mkdir(parents=True)
    launcher = tmp_path / "repo" / "mwaa" / "recsys-mwaa"
    shutil.copy2(LAUNCHER, launcher)
    if with_venv:
        python = tmp_path / "repo" / ".venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text('#!/bin/sh\necho "venv python:"; printf "%s\\n" "$@"\n')
        python.chmod(0o755)
    return launcher


@pytest.mark.parametrize("how", ["run directly", "run by another python"])
def test_launcher_execs_the_venvs_python_with_itself_and_the_arguments(tmp_path, fake_python3_on_path, how) -> None:
    launcher = fake_repo(tmp_path, with_venv=True)
    # sys.executable is this repo's .venv python, not the fake repo's: the launcher moves on to that one.
    start = [str(launcher)] if how == "run directly" else [sys.executable, str(launcher)]
    done = subprocess.run([*start, "status", "--environment", "a b"], capture_output=True, text=True,
                          env=no_aws_env(PATH=fake_python3_on_path))  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == ["venv python:", str(launcher), "status", "--environment", "a b"]


@pytest.mark.parametrize("how", ["run directly", "run by another python"])
def test_launcher_without_a_venv_says_make_venv_in_one_line(tmp_path, fake_python3_on_path, how) -> None:
    launcher = fake_repo(tmp_path, with_venv=False)
    start = [str(launcher)] if how == "run directly" else [sys.executable, str(launcher)]
    done = subprocess.run([*start, "--help"], capture_output=True, text=True, env=no_aws_env(PATH=fake_python3_on_path))
    assert done.returncode == 2 and done.stdout == ""
    assert one_line(done.stderr) == f"recsys-mwaa: no {(tmp_path / 'repo' / '.venv').resolve()}; run 'make venv' first"
