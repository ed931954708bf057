"""CloudFormation templates: cfn-lint clean, and the properties MWAA and the brief require."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from iam_policy import cfn_loader

TEMPLATES = sorted((Path(__file__).resolve().parent.parent / "mwaa" / "cloudformation").glob("*.yaml"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_is_clean(template: Path) -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert cfn_lint, "cfn-lint (installed with moto) is missing from the venv"
    done = subprocess.run([cfn_lint, str(template)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def load(name: str) -> dict:
    path = next(p for p in TEMPLATES if p.name == name)
    return yaml.load(path.read_text(), Loader=cfn_loader())


def test_the_bucket_is_versioned_encrypted_private_and_tls_only() -> None:
    resources = load("source-bucket.yaml")["Resources"]
    bucket = resources["Bucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    tls = resources["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_environment_stack_has_what_mwaa_and_the_brief_require() -> None:
    template = load("mwaa-environment.yaml")
    resources = template["Resources"]
    environment = resources["Environment"]["Properties"]
    assert environment["AirflowVersion"] == "3.3.1"
    assert template["Parameters"]["WebserverAccessMode"]["Default"] == "PRIVATE_ONLY"
    logs = environment["LoggingConfiguration"]
    assert len(logs) == 5 and all(v["Enabled"] for v in logs.values())
    assert resources["RecommenderIam"]["Properties"]["TemplateURL"] == "recommender-iam.yaml"
    assert resources["SourceBucket"]["Properties"]["TemplateURL"] == "source-bucket.yaml"
    assert environment["AirflowConfigurationOptions"]["recommender.backend"] == "sagemaker"
    ingress = resources["SecurityGroupSelfIngress"]["Properties"]
    assert "CidrIp" not in ingress  # components reach each other only, nothing from outside


def test_ec2_variant_is_reached_through_ssm_only_with_a_private_encrypted_database() -> None:
    template = load("ec2-airflow.yaml")
    resources = template["Resources"]
    host_sg = resources["InstanceSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in host_sg
    assert not [r for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
                and r["Properties"].get("GroupId") == {"!Ref": "InstanceSecurityGroup"}]  # fmt: skip
    db = resources["Database"]["Properties"]
    assert db["Engine"] == "postgres" and db["PubliclyAccessible"] is False and db["StorageEncrypted"] is True
    assert db["ManageMasterUserPassword"] is True and "MasterUserPassword" not in db
    role = resources["InstanceRole"]["Properties"]
    assert any("AmazonSSMManagedInstanceCore" in str(arn) for arn in role["ManagedPolicyArns"])
    instance = resources["Instance"]["Properties"]
    assert instance["MetadataOptions"]["HttpTokens"] == "required" and "KeyName" not in instance
    assert resources["SourceBucket"]["Properties"]["TemplateURL"] == "source-bucket.yaml"
    assert resources["RecommenderIam"]["Properties"]["Parameters"]["MwaaExecutionRoleName"] == {"!Ref": "InstanceRole"}
    user_data = str(instance["UserData"])
    assert '"apache-airflow==3.3.1"' in user_data and "constraints-3.3.1/constraints-3.12.txt" in user_data
    assert "AIRFLOW__API__HOST=127.0.0.1" in user_data


@pytest.mark.parametrize("name", ["mwaa-environment.yaml", "ec2-airflow.yaml"])
def test_input_bucket_arns_reach_the_nested_iam_stack(name: str) -> None:
    template = load(name)
    iam = load("recommender-iam.yaml")["Parameters"]["InputBucketArns"]
    assert template["Parameters"]["InputBucketArns"] == {
        **iam,
        "Description": template["Parameters"]["InputBucketArns"]["Description"],
    }
    passed = template["Resources"]["RecommenderIam"]["Properties"]["Parameters"]["InputBucketArns"]
    assert passed == {"!Join": [",", {"!Ref": "InputBucketArns"}]}


def bucket_rules(**values: str) -> dict[str, dict]:
    from iam_policy import resolve

    template = load("source-bucket.yaml")
    lifecycle = resolve(template, values, template["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"])
    return {rule["Id"]: rule for rule in lifecycle["Rules"]}


def test_run_data_expires_noncurrent_after_30_days_current_after_90_by_default() -> None:
    rules = bucket_rules(BucketName="b", RunDataPrefix="recsys/runs/")
    run = rules["run-data"]
    assert run["Status"] == "Enabled" and run["Prefix"] == "recsys/runs/"
    assert run["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert run["ExpirationInDays"] == "90" and "ExpiredObjectDeleteMarker" not in run
    abort = rules["abort-incomplete-multipart-uploads"]
    assert abort["Status"] == "Enabled" and abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert set(abort) == {"Id", "Status", "AbortIncompleteMultipartUpload"}  # aborts uploads only, bucket-wide
    # Nothing else expires: rollback needs every version of dags/, plugins.zip, requirements.txt, deployments/.
    assert [r for r in rules.values() if "Expiration" in str(r)] == [run]


@pytest.mark.parametrize("days", ["0", ""])
def test_zero_or_empty_keeps_current_run_data(days: str) -> None:
    run = bucket_rules(BucketName="b", RunDataExpirationDays=days, RunDataNoncurrentDays="7")["run-data"]
    assert "ExpirationInDays" not in run and run["ExpiredObjectDeleteMarker"] is True
    assert run["NoncurrentVersionExpiration"] == {"NoncurrentDays": "7"}


@pytest.mark.parametrize(("days", "ok"), [("", True), ("0", True), ("90", True), ("36500", True), ("00", False),
                                          ("-1", False), ("9x", False), ("123456", False)])  # fmt: skip
def test_expiration_days_pattern(days: str, ok: bool) -> None:
    import re

    for name in ("source-bucket.yaml", "mwaa-environment.yaml", "ec2-airflow.yaml"):
        pattern = load(name)["Parameters"]["RunDataExpirationDays"]["AllowedPattern"]
        assert (re.fullmatch(pattern, days) is not None) is ok, name


@pytest.mark.parametrize("name", ["mwaa-environment.yaml", "ec2-airflow.yaml"])
def test_both_stacks_give_the_bucket_the_run_data_prefix_and_days(name: str) -> None:
    template = load(name)
    passed = template["Resources"]["SourceBucket"]["Properties"]["Parameters"]
    assert passed["RunDataPrefix"] == {"!Sub": "${DataPrefix}/runs/"}  # video_recommender.layout: <root>/runs/<run>
    for key in ("RunDataNoncurrentDays", "RunDataExpirationDays"):
        assert passed[key] == {"!Ref": key}
        assert template["Parameters"][key]["Default"] == load("source-bucket.yaml")["Parameters"][key]["Default"]
