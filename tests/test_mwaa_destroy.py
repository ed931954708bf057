"""recsys-mwaa destroy: the stack goes; the versioned bucket it retains goes only when its name is confirmed.

CloudFormation and S3 are moto's (``mock_aws``): the stack is mwaa/cloudformation/source-bucket.yaml
itself (moto keeps its bucket on deletion, as ``DeletionPolicy: Retain`` says) or a stand-in for
the environment stack's outputs. A failed stack deletion comes from a fake CloudFormation client.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import cli, destroy  # ruff: ignore[module-import-not-at-top-of-file]

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..S3..BucketPolicy")
BUCKET = "mwaa-123456789012-recsys-mwaa-51af3dc0"
STACK = "recsys-mwaa"
# What mwaa-environment.yaml's outputs look like (moto cannot create its nested stacks): a retained bucket.
ENVIRONMENT_LIKE = {
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {"BucketName": BUCKET}}
    },
    "Outputs": {"SourceBucketName": {"Value": {"Ref": "Bucket"}}, "EnvironmentName": {"Value": "recsys-mwaa"}},
}


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(cli, "_interactive", lambda: False)  # as under pytest; the prompt tests say otherwise
    with mock_aws():
        yield boto3.client("cloudformation"), boto3.client("s3")


def create_stack(cfn, s3, kind: str = "source-bucket") -> str:
    if kind == "source-bucket":
        body = (REPO / "mwaa" / "cloudformation" / "source-bucket.yaml").read_text()
        parameters = [{"ParameterKey": "BucketName", "ParameterValue": BUCKET}]
    else:
        body, parameters = json.dumps(ENVIRONMENT_LIKE), []
    stack_id = cfn.create_stack(StackName=STACK, TemplateBody=body, Parameters=parameters)["StackId"]
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # moto skips the property
    # CloudFormation tags what it creates with aws:cloudformation:* system tags, which moto does
    # not and which no caller may set: put them through moto's backend, as the service would.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_bucket_tagging(
        BUCKET, {"aws:cloudformation:stack-id": stack_id, "aws:cloudformation:stack-name": STACK}
    )
    return stack_id


def fill(s3) -> tuple[int, int]:
    """Versions and delete markers as a deployed environment leaves them; returns their counts."""
    for body in (b"v1", b"v2", b"v3"):
        s3.put_object(Bucket=BUCKET, Key="plugins.zip", Body=body)
    s3.put_object(Bucket=BUCKET, Key="dags/video_recommender.py", Body=b"dag")
    s3.put_object(Bucket=BUCKET, Key="recsys/runs/r1/metrics.json", Body=b"{}")
    s3.delete_object(Bucket=BUCKET, Key="recsys/runs/r1/metrics.json")  # a delete marker over a version
    for body in (b"old", b"re-added"):  # a file deleted, added again, deleted again: two markers
        s3.put_object(Bucket=BUCKET, Key="dags/removed.py", Body=body)
        s3.delete_object(Bucket=BUCKET, Key="dags/removed.py")
    return 7, 3


def listing(s3) -> set[tuple[str, str, bool]]:
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
    return {(e["Key"], e["VersionId"], kind == "DeleteMarkers") for page in pages
            for kind in ("Versions", "DeleteMarkers") for e in page.get(kind, [])}  # fmt: skip


def bucket_exists(s3) -> bool:
    return BUCKET in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]


def stack_status(cfn, stack_id: str) -> str:
    return cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["destroy", *args, "--poll-seconds", "0"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    # moto's own notice about the template's BucketPolicy (it parses the stack's resources lazily)
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("No Moto CloudFormation"))
    return code, out, err


@pytest.mark.parametrize("kind", ["source-bucket", "environment-like"])
def test_confirmed_destroy_deletes_the_stack_every_version_every_delete_marker_and_the_bucket(
    aws, capsys, kind
) -> None:
    cfn, s3 = aws
    stack_id = create_stack(cfn, s3, kind)
    versions, markers = fill(s3)
    assert sum(1 for *_, marker in listing(s3) if not marker) == versions
    assert sum(1 for *_, marker in listing(s3) if marker) == markers
    code, out, err = run(capsys, "--stack", STACK, "--yes-delete-bucket-contents", BUCKET)
    assert (code, err) == (0, ""), err
    assert stack_status(cfn, stack_id) == "DELETE_COMPLETE"
    assert not bucket_exists(s3)
    assert (
        f"deleted bucket {BUCKET}" in out and f"{versions + markers} object versions and delete markers deleted" in out
    )


def test_more_versions_than_one_delete_call_takes(aws, capsys, monkeypatch) -> None:
    cfn, s3 = aws
    create_stack(cfn, s3)
    monkeypatch.setattr(destroy, "DELETE_BATCH", 4)  # S3's limit is 1,000; 4 shows the batching as well
    calls: list[int] = []
    original = destroy.empty_and_delete_bucket

    def counting(s3_client, bucket, say=print):
        real = s3_client.delete_objects

        def delete_objects(**kwargs):
            calls.append(len(kwargs["Delete"]["Objects"]))
            return real(**kwargs)

        s3_client.delete_objects = delete_objects
        return original(s3_client, bucket, say)

    monkeypatch.setattr(destroy, "empty_and_delete_bucket", counting)
    for i in range(9):
        s3.put_object(Bucket=BUCKET, Key="recsys/runs/r/part", Body=str(i).encode())
    s3.delete_object(Bucket=BUCKET, Key="recsys/runs/r/part")
    code, _, err = run(capsys, "--stack", STACK, "--yes-delete-bucket-contents", BUCKET)
    assert (code, err) == (0, "") and not bucket_exists(s3)
    assert calls == [4, 4, 2]


def test_without_confirmation_only_the_stack_goes_and_the_finishing_command_is_printed(aws, capsys) -> None:
    cfn, s3 = aws
    stack_id = create_stack(cfn, s3)
    fill(s3)
    before = listing(s3)
    code, out, err = run(capsys, "--stack", STACK)
    assert (code, err) == (0, "")
    assert stack_status(cfn, stack_id) == "DELETE_COMPLETE"
    assert bucket_exists(s3) and listing(s3) == before  # not one version or marker touched
    assert f"kept bucket {BUCKET}: 7 object versions and 3 delete markers remain (10 in all)" in out
    command = f"recsys-mwaa destroy --bucket {BUCKET} --yes-delete-bucket-contents {BUCKET} --region us-east-1"
    assert out.splitlines()[-1].strip() == command
    # The printed command finishes the job.
    code, out, err = run(capsys, *shlex.split(command)[2:])
    assert (code, err) == (0, "") and not bucket_exists(s3)


@pytest.mark.parametrize("given", [BUCKET + "x", BUCKET.upper(), "mwaa-123456789012-recsys-mwaa", " " + BUCKET])
def test_a_wrong_confirmation_is_refused_before_anything_is_deleted(aws, capsys, given) -> None:
    cfn, s3 = aws
    stack_id = create_stack(cfn, s3)
    fill(s3)
    before = listing(s3)
    code, out, err = run(capsys, "--stack", STACK, "--yes-delete-bucket-contents", given)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"FAIL: --yes-delete-bucket-contents {given!r} does not name the bucket to delete ({BUCKET}); "
        "give its name exactly; nothing was deleted"
    ]
    assert stack_status(cfn, stack_id) == "CREATE_COMPLETE"
    assert listing(s3) == before


@pytest.mark.parametrize(
    ("answer", "stack_deleted", "bucket_kept"),
    [(BUCKET, True, False), ("", True, True)],
    ids=["typed-the-name", "pressed-enter"],
)
def test_the_prompt_deletes_the_bucket_only_when_its_name_is_typed(
    aws, capsys, monkeypatch, answer, stack_deleted, bucket_kept
) -> None:
    cfn, s3 = aws
    stack_id = create_stack(cfn, s3)
    fill(s3)
    prompts: list[str] = []
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    code, out, err = run(capsys, "--stack", STACK)
    assert (code, err) == (0, "")
    assert prompts == [f"Bucket {BUCKET} holds 7 object versions and 3 delete markers. To delete them and the "
                       "bucket after the stack, type its name; to keep it, press Enter: "]  # fmt: skip
    assert stack_status(cfn, stack_id) == ("DELETE_COMPLETE" if stack_deleted else "CREATE_COMPLETE")
    assert bucket_exists(s3) is bucket_kept
    assert ("kept bucket" in out) is bucket_kept


def test_a_wrong_name_at_the_prompt_is_refused_and_nothing_is_deleted(aws, capsys, monkeypatch) -> None:
    cfn, s3 = aws
    stack_id = create_stack(cfn, s3)
    fill(s3)
    before = listing(s3)
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    code, _out, err = run(capsys, "--stack", STACK)
    assert code == 2
    assert err.splitlines() == [f"FAIL: 'yes' is not '{BUCKET}'; nothing was deleted (press Enter to keep the bucket)"]
    assert stack_status(cfn, stack_id) == "CREATE_COMPLETE" and listing(s3) == before


def test_no_such_stack_is_one_line_and_exit_2(aws, capsys) -> None:
    code, out, err = run(capsys, "--stack", "nope")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "FAIL: no CloudFormation stack in us-east-1: Stack with id nope does not exist; check --stack and --region "
        "(aws cloudformation list-stacks --region us-east-1)"
    ]


def test_destroy_needs_a_stack_or_a_bucket(aws, capsys) -> None:
    code, _, err = run(capsys)
    assert code == 2 and err.startswith("FAIL: destroy needs --stack")


class FailingDeletion:
    """A CloudFormation client whose stack deletion ends DELETE_FAILED."""

    def __init__(self) -> None:
        self.statuses = ["DELETE_IN_PROGRESS", "DELETE_FAILED"]

    def describe_stacks(self, StackName):
        if not StackName.startswith("arn:"):
            return {"Stacks": [{"StackName": STACK, "StackId": "arn:aws:cloudformation:x", "Outputs": [
                {"OutputKey": "SourceBucketName", "OutputValue": BUCKET}]}]}  # fmt: skip
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {
            "Stacks": [
                {
                    "StackStatus": status,
                    "StackStatusReason": "The following resource(s) failed to delete: [Environment].",
                }
            ]
        }

    def delete_stack(self, StackName) -> None:
        pass


def test_a_failed_stack_deletion_leaves_the_bucket_alone(aws, capsys, monkeypatch) -> None:
    _, s3 = aws
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    monkeypatch.setattr(cli, "_destroy_clients", lambda args: (FailingDeletion(), s3))
    code, _out, err = run(capsys, "--stack", STACK, "--yes-delete-bucket-contents", BUCKET, "--region", "us-east-1")
    assert code == 1
    assert err.splitlines() == [
        f"FAIL: stack {STACK} ended DELETE_FAILED: The following resource(s) failed to delete: [Environment].; "
        "nothing was done to its bucket. See aws cloudformation describe-stack-events --stack-name arn:aws:cloudformation:x"
    ]
    assert bucket_exists(s3) and len(listing(s3)) == 1


def test_no_region_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    import os

    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    code, out, err = run(capsys, "--stack", STACK)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "FAIL: no AWS region: set AWS_REGION or AWS_DEFAULT_REGION (or region in the profile) or pass --region"
    ]


def test_a_bucket_named_directly_must_be_one_a_deleted_stack_of_ours_kept(aws, capsys) -> None:
    cfn, s3 = aws
    create_stack(cfn, s3)
    fill(s3)
    before = listing(s3)
    # Its stack still runs (a live environment's bucket): refused, nothing deleted.
    code, _, err = run(capsys, "--bucket", BUCKET, "--yes-delete-bucket-contents", BUCKET)
    assert code == 2 and "which is CREATE_COMPLETE, not deleted" in err and "nothing was deleted" in err
    assert listing(s3) == before and bucket_exists(s3)
    # Not created by CloudFormation at all (anyone's bucket): refused.
    s3.create_bucket(Bucket="someone-elses")
    s3.put_object(Bucket="someone-elses", Key="k", Body=b"x")
    code, _, err = run(capsys, "--bucket", "someone-elses", "--yes-delete-bucket-contents", "someone-elses")
    assert code == 2 and "no aws:cloudformation:stack-id tag" in err
    assert bucket_exists(s3) and s3.list_objects_v2(Bucket="someone-elses")["KeyCount"] == 1
    # Once its stack is deleted, the retained bucket can go.
    assert run(capsys, "--stack", STACK)[0] == 0
    code, out, _ = run(capsys, "--bucket", BUCKET, "--yes-delete-bucket-contents", BUCKET)
    assert code == 0 and not bucket_exists(s3), out
