"""CloudFormation templates: cfn-lint clean, and the properties MWAA and the brief require."""

from __future__ import annotations

import re
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


# EnvironmentName: a valid MWAA name, and a valid S3 bucket name once in mwaa-<account>-<name>-<8 hex>.

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/recsys-mwaa/51af3dc0-da77-11e4-872e-1234567db123"
MWAA_NAME = re.compile(
    r"[a-zA-Z][0-9a-zA-Z-_]*"
)  # https://docs.aws.amazon.com/mwaa/latest/API/API_CreateEnvironment.html


def s3_bucket_name_ok(name: str) -> bool:
    """General purpose bucket naming rules, https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
    (the dots-free subset these templates use)."""
    return (
        3 <= len(name) <= 63
        and re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name) is not None
        and ".." not in name
        and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name)
        and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
    )


def accepted(parameter: dict, value: str) -> bool:
    """What CloudFormation checks: the AllowedPattern matches the whole value; Min/MaxLength."""
    return re.fullmatch(parameter["AllowedPattern"], value) is not None and parameter.get("MinLength", 0) <= len(
        value
    ) <= parameter.get("MaxLength", 4096)


def bucket_name(template_name: str, **values: str) -> str:
    from iam_policy import resolve

    template = load(template_name)
    values = {"AWS::AccountId": "123456789012", "AWS::StackId": STACK_ID, **values}
    return resolve(template, values, template["Resources"]["SourceBucket"]["Properties"]["Parameters"]["BucketName"])


GOOD_NAMES = ["a", "recsys-mwaa", "env2", "a-b-c", "x" * 36, "prod-recsys-eu-west-1", "a1"]
BAD_NAMES = ["", "Recsys", "recsys_mwaa", "1env", "-env", "env-", "x" * 37, "re.cs", "recsys mwaa", "ümlaut"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_a_good_environment_name_is_valid_for_mwaa_and_s3(name: str) -> None:
    parameter = load("mwaa-environment.yaml")["Parameters"]["EnvironmentName"]
    assert accepted(parameter, name)
    assert MWAA_NAME.fullmatch(name) and 1 <= len(name) <= 80
    bucket = bucket_name("mwaa-environment.yaml", EnvironmentName=name)
    assert bucket == f"mwaa-123456789012-{name}-51af3dc0"
    assert s3_bucket_name_ok(bucket), bucket
    assert re.fullmatch(load("source-bucket.yaml")["Parameters"]["BucketName"]["AllowedPattern"], bucket)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_environment_name_is_refused(name: str) -> None:
    assert not accepted(load("mwaa-environment.yaml")["Parameters"]["EnvironmentName"], name)


def test_every_accepted_name_makes_a_valid_bucket_and_the_longest_fills_63_characters() -> None:
    parameter = load("mwaa-environment.yaml")["Parameters"]["EnvironmentName"]
    alphabet = "a0-"
    for length in (1, 2, 3, 35, 36):
        for name in {(alphabet * 40)[i : i + length] for i in range(3)} | {"z" * length}:
            if accepted(parameter, name):
                assert s3_bucket_name_ok(bucket_name("mwaa-environment.yaml", EnvironmentName=name)), name
    assert len(bucket_name("mwaa-environment.yaml", EnvironmentName="x" * 36)) == 63


@pytest.mark.parametrize("name", ["a", "recsys-airflow", "x" * 33])
def test_the_ec2_name_makes_a_valid_bucket_too(name: str) -> None:
    parameter = load("ec2-airflow.yaml")["Parameters"]["Name"]
    assert accepted(parameter, name) and not accepted(parameter, name + "x" * (34 - len(name)))
    assert s3_bucket_name_ok(bucket_name("ec2-airflow.yaml", Name=name))


@pytest.mark.parametrize("name", ["mwaa-environment.yaml", "ec2-airflow.yaml"])
def test_the_bucket_name_changes_with_the_stack_and_is_used_only_through_the_nested_stack(name: str) -> None:
    key = "EnvironmentName" if name == "mwaa-environment.yaml" else "Name"
    first = bucket_name(name, **{key: "env"})
    second = bucket_name(name, **{key: "env"}, **{"AWS::StackId": STACK_ID.replace("51af3dc0", "0f00ba47")})
    assert first != second and first.endswith("-51af3dc0") and second.endswith("-0f00ba47")
    text = (TEMPLATES[0].parent / name).read_text()
    assert text.count("${AWS::AccountId}-${") == 1  # the name is built once, for the nested stack
    # Every other mention of the bucket is one of the nested stack's outputs.
    assert "s3:::mwaa-" not in text and "s3:::airflow-" not in text
    assert "SourceBucket.Outputs.BucketName" in text


# The PRIVATE_ONLY UI: its security group admits itself, plus (optionally) a CIDR or a security group on 443.


def test_the_ui_security_group_admits_only_itself_unless_told_otherwise() -> None:
    template = load("mwaa-environment.yaml")
    ingress = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::SecurityGroupIngress"}
    assert set(ingress) == {"SecurityGroupSelfIngress", "WebUiIngressFromCidr", "WebUiIngressFromSecurityGroup"}
    assert ingress["WebUiIngressFromCidr"]["Condition"] == "WebUiFromCidr"
    assert ingress["WebUiIngressFromSecurityGroup"]["Condition"] == "WebUiFromSecurityGroup"
    for key in ("WebUiIngressFromCidr", "WebUiIngressFromSecurityGroup"):
        rule = ingress[key]["Properties"]
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
        assert rule["GroupId"] == {"!Ref": "SecurityGroup"}
    assert ingress["WebUiIngressFromCidr"]["Properties"]["CidrIp"] == {"!Ref": "WebUiIngressCidr"}
    assert ingress["WebUiIngressFromSecurityGroup"]["Properties"]["SourceSecurityGroupId"] == {
        "!Ref": "WebUiIngressSecurityGroupId"
    }
    from iam_policy import resolve

    conditions = template["Conditions"]
    for cidr, group, expected in (("", "", (False, False)), ("10.8.0.0/16", "", (True, False)),
                                  ("", "sg-0123456789abcdef0", (False, True))):  # fmt: skip
        values = {"WebUiIngressCidr": cidr, "WebUiIngressSecurityGroupId": group}
        got = tuple(resolve(template, values, conditions[c]) for c in ("WebUiFromCidr", "WebUiFromSecurityGroup"))
        assert got == expected
    assert template["Parameters"]["WebUiIngressCidr"]["Default"] == ""
    assert template["Parameters"]["WebUiIngressSecurityGroupId"]["Default"] == ""


@pytest.mark.parametrize(
    ("parameter", "value", "ok"),
    [("WebUiIngressCidr", "", True), ("WebUiIngressCidr", "10.8.0.0/16", True), ("WebUiIngressCidr", "192.168.1.7/32", True),
     ("WebUiIngressCidr", "10.8.0.0", False), ("WebUiIngressCidr", "10.8.0.0/33", False), ("WebUiIngressCidr", "300.1.1.1/8", False),
     ("WebUiIngressCidr", "sg-01234567", False),
     ("WebUiIngressSecurityGroupId", "", True), ("WebUiIngressSecurityGroupId", "sg-01234567", True),
     ("WebUiIngressSecurityGroupId", "sg-0123456789abcdef0", True), ("WebUiIngressSecurityGroupId", "sg-123", False),
     ("WebUiIngressSecurityGroupId", "10.0.0.0/8", False)],
)  # fmt: skip
def test_ui_ingress_parameters_take_only_a_cidr_or_a_security_group_id(parameter: str, value: str, ok: bool) -> None:
    assert accepted(load("mwaa-environment.yaml")["Parameters"][parameter], value) is ok


def test_ui_ingress_with_a_public_ui_is_refused_by_a_rule() -> None:
    rule = load("mwaa-environment.yaml")["Rules"]["UiIngressIsForThePrivateUiOnly"]
    assert rule["RuleCondition"] == {"!Equals": [{"!Ref": "WebserverAccessMode"}, "PUBLIC_ONLY"]}


# The EC2 variant's metadata database: RDS PostgreSQL or Aurora Serverless v2 PostgreSQL.

DB_VALUES = {
    "Database.MasterUserSecret.SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-db",
    "Database.Endpoint.Address": "rds.example.internal",
    "AuroraCluster.MasterUserSecret.SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aurora",
    "AuroraCluster.Endpoint.Address": "aurora.cluster.example.internal",
    "SourceBucket.Outputs.BucketName": "airflow-123456789012-recsys-airflow-51af3dc0",
    "SourceBucket.Outputs.BucketArn": "arn:aws:s3:::airflow-123456789012-recsys-airflow-51af3dc0",
    "RecommenderIam.Outputs.SageMakerExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
    **{"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "Instance": "i-1"},
}


def test_aurora_serverless_v2_is_encrypted_private_and_scales_within_the_parameters() -> None:
    template = load("ec2-airflow.yaml")
    parameters, resources = template["Parameters"], template["Resources"]
    assert parameters["DatabaseEngine"]["AllowedValues"] == ["rds-postgres", "aurora-serverless-v2"]
    assert parameters["DatabaseEngine"]["Default"] == "rds-postgres"
    assert (parameters["AuroraMinCapacity"]["MinValue"], parameters["AuroraMaxCapacity"]["MaxValue"]) == (0, 256)
    cluster, writer = resources["AuroraCluster"], resources["AuroraWriter"]
    assert cluster["Condition"] == writer["Condition"] == "UseAurora" and resources["Database"]["Condition"] == "UseRds"
    c = cluster["Properties"]
    assert c["Engine"] == "aurora-postgresql" and c["StorageEncrypted"] is True and c["DeletionProtection"] is True
    assert c["ManageMasterUserPassword"] is True and "MasterUserPassword" not in c
    assert (
        c["DatabaseName"] == "airflow" and c["MasterUsername"] == "airflow"
    )  # as the RDS instance: one connection string
    assert c["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": {"!Ref": "AuroraMinCapacity"}, "MaxCapacity": {"!Ref": "AuroraMaxCapacity"}
    }  # fmt: skip
    assert c["VpcSecurityGroupIds"] == [{"!Ref": "DatabaseSecurityGroup"}]
    assert c["DBSubnetGroupName"] == {"!Ref": "DatabaseSubnets"}
    assert cluster["DeletionPolicy"] == "Snapshot"
    w = writer["Properties"]
    assert w["DBInstanceClass"] == "db.serverless" and w["PubliclyAccessible"] is False
    assert w["DBClusterIdentifier"] == {"!Ref": "AuroraCluster"}


@pytest.mark.parametrize(
    ("engine", "secret", "host", "instance"),
    [("rds-postgres", "rds-db", "rds.example.internal", "Database"),
     ("aurora-serverless-v2", "aurora", "aurora.cluster.example.internal", "AuroraWriter")],
)  # fmt: skip
def test_the_host_its_permission_and_the_outputs_follow_the_database_engine(engine, secret, host, instance) -> None:
    from iam_policy import resolve

    template = load("ec2-airflow.yaml")
    values = {**DB_VALUES, "DatabaseEngine": engine, "AuroraWriter": "aurora-writer", "Database": "rds-db"}
    outputs = resolve(template, values, template["Outputs"])
    assert outputs["DatabaseSecretArn"]["Value"].endswith(f":secret:{secret}")
    assert outputs["AirflowDatabaseConnection"]["Value"] == f"postgresql+psycopg2://airflow@{host}:5432/airflow"
    policy = resolve(template, values, template["Resources"]["InstanceRole"]["Properties"]["Policies"][0])
    (read_secret,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "MetadataDatabasePassword"]
    assert read_secret["Resource"] == outputs["DatabaseSecretArn"]["Value"]
    user_data = template["Resources"]["Instance"]["Properties"]["UserData"]["Fn::Base64"]["!Sub"]
    script, variables = user_data
    variables = resolve(template, values, variables)
    assert variables["SecretArn"] == read_secret["Resource"] and variables["DbHost"] == host
    assert variables["DbInstance"] == values[instance]  # the host starts once that database instance exists
    assert "@${DbHost}:5432/airflow" in script and '--secret-id "${SecretArn}"' in script
