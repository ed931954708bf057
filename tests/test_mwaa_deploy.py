"""recsys-mwaa deploy against S3 in moto (with versioning) and the MWAA API stubbed by botocore.

moto has no MWAA: botocore's Stubber answers GetEnvironment / UpdateEnvironment with the
API's own shapes and checks the parameters the command sends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import packaging  # ruff: ignore[module-import-not-at-top-of-file]
from recsys_mwaa.deploy import DeployError, deploy, status  # ruff: ignore[module-import-not-at-top-of-file]

BUCKET, ENV = "mwaa-123456789012-recsys", "recsys-env"


def environment(
    status_: str = "AVAILABLE", plugins: str | None = None, requirements: str | None = None, error=None
) -> dict:
    env = {
        "Name": ENV,
        "Status": status_,
        "WebserverUrl": "abc.c7.us-east-1.airflow.amazonaws.com",
        "AirflowVersion": "3.3.1",
    }
    if plugins:
        env |= {"PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": plugins}
    if requirements:
        env |= {"RequirementsS3Path": "requirements.txt", "RequirementsS3ObjectVersion": requirements}
    if error:
        env["LastUpdate"] = {"Status": "FAILED", "Error": {"ErrorCode": "PluginsInstallFailed", "ErrorMessage": error}}
    return {"Environment": env}


@pytest.fixture
def aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        mwaa = boto3.client("mwaa", region_name="us-east-1")
        with Stubber(mwaa) as stub:
            yield s3, mwaa, stub, packaging.build(tmp_path / "dist")
            stub.assert_no_pending_responses()


def versioned(s3) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def test_refuses_a_bucket_without_versioning(aws) -> None:
    s3, mwaa, _, package = aws
    with pytest.raises(DeployError, match=r"has versioning never enabled.*put-bucket-versioning"):
        deploy(package, s3, mwaa, BUCKET, ENV, say=lambda _: None)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_first_deploy_uploads_everything_updates_and_waits(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    stub.add_response("update_environment", {"Arn": "arn:aws:airflow:us-east-1:123456789012:environment/recsys-env"},
                      {"Name": ENV, "PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": ANY,
                       "RequirementsS3Path": "requirements.txt", "RequirementsS3ObjectVersion": ANY})  # fmt: skip
    stub.add_response("get_environment", environment("UPDATING"), {"Name": ENV})
    stub.add_response("get_environment", environment("AVAILABLE"), {"Name": ENV})
    said: list[str] = []
    result = deploy(package, s3, mwaa, BUCKET, ENV, say=said.append, poll_seconds=0)
    assert sorted(result["uploads"]) == sorted(package.files())
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="plugins.zip")["Versions"]
    assert result["update"]["PluginsS3ObjectVersion"] == versions[0]["VersionId"]
    assert result["url"] == "https://abc.c7.us-east-1.airflow.amazonaws.com"
    assert any(line.startswith("uploading plugins.zip (") for line in said)


def test_unchanged_files_are_not_uploaded_and_no_update_is_made(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    stub.add_response("update_environment", {"Arn": "arn"}, None)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    first = deploy(package, s3, mwaa, BUCKET, ENV, say=lambda _: None, poll_seconds=0)
    plugins_v = first["update"]["PluginsS3ObjectVersion"]
    requirements_v = first["update"]["RequirementsS3ObjectVersion"]
    stub.add_response("get_environment", environment(plugins=plugins_v, requirements=requirements_v), {"Name": ENV})
    second = deploy(package, s3, mwaa, BUCKET, ENV, say=lambda _: None)  # no UpdateEnvironment stubbed: none allowed
    assert second["uploads"] == [] and second["update"] == {}
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="plugins.zip")["Versions"]) == 1


def test_a_changed_dag_is_uploaded_and_removed_ones_deleted_only_when_asked(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    s3.put_object(Bucket=BUCKET, Key="dags/old_dag.py", Body=b"# removed locally")
    for key in ("plugins.zip", "requirements.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=package.files()[key].read_bytes(),
                      Metadata={"sha256": packaging.sha256(package.files()[key])})  # fmt: skip
    versions = {k: s3.head_object(Bucket=BUCKET, Key=k)["VersionId"] for k in ("plugins.zip", "requirements.txt")}
    current = environment(plugins=versions["plugins.zip"], requirements=versions["requirements.txt"])
    stub.add_response("get_environment", current, {"Name": ENV})
    kept = deploy(package, s3, mwaa, BUCKET, ENV, say=lambda _: None)
    assert set(kept["uploads"]) == {"dags/recommender_workflow.py", "dags/.airflowignore"} and kept["update"] == {}
    assert "dags/old_dag.py" in {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    stub.add_response("get_environment", current, {"Name": ENV})
    pruned = deploy(package, s3, mwaa, BUCKET, ENV, say=lambda _: None, delete_removed=True)
    assert pruned["deletes"] == ["dags/old_dag.py"] and pruned["uploads"] == []


def test_update_failed_is_reported_with_the_environments_error(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    stub.add_response("update_environment", {"Arn": "arn"}, None)
    stub.add_response(
        "get_environment", environment("UPDATE_FAILED", error="plugins.zip: No module named x"), {"Name": ENV}
    )
    with pytest.raises(DeployError, match=r"UPDATE_FAILED: PluginsInstallFailed plugins\.zip: No module named x"):
        deploy(package, s3, mwaa, BUCKET, ENV, say=lambda _: None, poll_seconds=0)


def test_dry_run_changes_nothing(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    said: list[str] = []
    result = deploy(package, s3, mwaa, BUCKET, ENV, dry_run=True, say=said.append)
    assert result["dry_run"] and sorted(result["uploads"]) == sorted(package.files())
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert "upload  plugins.zip" in said and any("UpdateEnvironment would follow" in line for line in said)


def test_status_reports_versions_and_url(aws) -> None:
    _, mwaa, stub, _ = aws
    stub.add_response("get_environment", environment(plugins="v1", requirements="v2"), {"Name": ENV})
    assert status(mwaa, ENV) | {} == {
        "status": "AVAILABLE", "airflow_version": "3.3.1", "plugins_version": "v1", "requirements_version": "v2",
        "last_update": None, "url": "https://abc.c7.us-east-1.airflow.amazonaws.com",
    }  # fmt: skip


def test_rollback_returns_to_the_previous_versions(aws) -> None:
    from recsys_mwaa.deploy import rollback

    s3, mwaa, stub, _ = aws
    versioned(s3)
    old = {}
    for key, body in (
        ("plugins.zip", b"old plugins"),
        ("requirements.txt", b"old reqs"),
        ("dags/recommender_workflow.py", b"# old dag"),
    ):
        old[key] = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]
    new = {}
    for key in old:
        new[key] = s3.put_object(Bucket=BUCKET, Key=key, Body=b"new " + key.encode())["VersionId"]
    stub.add_response(
        "get_environment", environment(plugins=new["plugins.zip"], requirements=new["requirements.txt"]), {"Name": ENV}
    )
    stub.add_response("update_environment", {"Arn": "arn"}, {"Name": ENV, "PluginsS3Path": "plugins.zip",
                      "PluginsS3ObjectVersion": old["plugins.zip"], "RequirementsS3Path": "requirements.txt",
                      "RequirementsS3ObjectVersion": old["requirements.txt"]})  # fmt: skip
    stub.add_response("get_environment", environment(), {"Name": ENV})
    result = rollback(s3, mwaa, BUCKET, ENV, say=lambda _: None, poll_seconds=0)
    assert result["restores"] == {"dags/recommender_workflow.py": old["dags/recommender_workflow.py"]}
    assert s3.get_object(Bucket=BUCKET, Key="dags/recommender_workflow.py")["Body"].read() == b"# old dag"
