"""The MWAA execution-role policy in mwaa/cloudformation/recommender-iam.yaml, and its evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from aws_calls import Call
from iam_policy import TEMPLATE, allowed, cfn_loader, execution_role_permissions, load_policy, required_permissions

from video_recommender import sagemaker_requests as requests
from video_recommender.settings import Settings

ROLE = "arn:aws:iam::123456789012:role/recsys-sagemaker"
ACCOUNT = "123456789012"
VALUES = {
    "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "DataBucketName": "data",
    "DataPrefix": "recsys", "JobNamePrefix": "video-recsys", "SageMakerExecutionRole.Arn": ROLE,
}  # fmt: skip
POLICY = load_policy("MwaaSageMakerPolicy", VALUES)


def permitted(call: Call) -> bool:
    return all(allowed(POLICY, *need) for need in required_permissions(call, "us-east-1", "123456789012"))


def test_pass_role_only_for_the_sagemaker_role_and_only_to_sagemaker() -> None:
    passes = [s for s in POLICY if "iam:PassRole" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert len(passes) == 1
    assert passes[0]["Resource"] == ROLE
    assert passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert not any(s["Action"] in ("*", "iam:*", "sagemaker:*", "s3:*") for s in POLICY)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (
            Call(
                "sagemaker",
                "CreateTrainingJob",
                {"TrainingJobName": "video-recsys-train-ab-t1", "RoleArn": ROLE, "Tags": [{}]},
            ),
            True,
        ),
        (Call("sagemaker", "CreateTrainingJob", {"TrainingJobName": "other-job", "RoleArn": ROLE}), False),
        (
            Call(
                "sagemaker",
                "CreateTrainingJob",
                {"TrainingJobName": "video-recsys-x", "RoleArn": "arn:aws:iam::123456789012:role/admin"},
            ),
            False,
        ),
        (Call("sagemaker", "DeleteEndpoint", {"ModelName": "video-recsys-x"}), False),
        # the report's tuning charts: the trials of the project's tuning jobs, no one else's
        (
            Call(
                "sagemaker",
                "ListTrainingJobsForHyperParameterTuningJob",
                {"HyperParameterTuningJobName": "video-recsys-tune-x-t1", "MaxResults": 100},
            ),
            True,
        ),
        (
            Call(
                "sagemaker",
                "ListTrainingJobsForHyperParameterTuningJob",
                {"HyperParameterTuningJobName": "other-tune", "MaxResults": 100},
            ),
            False,
        ),
        (Call("s3", "PutObject", {"Bucket": "data", "Key": "recsys/runs/x/metrics.json"}), True),
        (Call("s3", "PutObject", {"Bucket": "data", "Key": "elsewhere/x"}), False),
        (Call("s3", "GetObject", {"Bucket": "other", "Key": "recsys/x"}), False),
        (Call("s3", "HeadBucket", {"Bucket": "data"}), True),
        (
            Call(
                "logs",
                "GetLogEvents",
                {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "video-recsys-x/algo-1"},
            ),
            True,
        ),
        (Call("logs", "GetLogEvents", {"logGroupName": "/aws/lambda/x", "logStreamName": "y"}), False),
    ],
)
def test_the_evaluator_allows_the_project_and_nothing_else(call: Call, expected: bool) -> None:
    assert permitted(call) is expected


def test_a_call_without_a_mapping_fails_the_check() -> None:
    with pytest.raises(KeyError):
        required_permissions(Call("s3", "DeleteBucket", {"Bucket": "data"}), "us-east-1", "123456789012")
    with pytest.raises(AssertionError, match="no IAM mapping"):
        required_permissions(Call("ec2", "RunInstances", {}), "us-east-1", "123456789012")


# The SageMaker execution role: what SageMaker does as it for the DAG's job requests.

SETTINGS = Settings(storage_root="s3://b/p", backend="sagemaker", sagemaker_role_arn="arn:aws:iam::123456789012:role/r")
ROLE_VALUES = {
    **VALUES,
    "DataBucketName": "b",
    "DataPrefix": "p",
    "SageMakerExecutionRole.Arn": SETTINGS.sagemaker_role_arn,
}
ROLE_POLICY = load_policy("SageMakerExecutionRole", ROLE_VALUES)
CALLER_POLICY = load_policy("MwaaSageMakerPolicy", ROLE_VALUES)
RUN_ROOT = "s3://b/p/runs/manual__1"
IMAGES = json.loads(
    (Path(__file__).resolve().parent.parent / "plugins" / "video_recommender" / "sagemaker_images.json").read_text()
)


def job_requests() -> dict[str, tuple[str, dict]]:
    """(API operation, request) for every kind of job the DAG starts, as the DAG builds them."""
    name = "video-recsys-x-0123456789-t1"
    train = (RUN_ROOT + "/recordio/train", RUN_ROOT + "/recordio/test", RUN_ROOT + "/models")
    return {
        "preprocess": ("CreateProcessingJob", requests.processing_request(
            SETTINGS, name, "preprocess", RUN_ROOT, "manual__1", input_uri="s3://b/p/input/reviews.tsv.gz")),
        "preprocess-generated": ("CreateProcessingJob", requests.processing_request(
            SETTINGS, name, "preprocess", RUN_ROOT, "manual__1", generate_scale=0.01)),
        "prepare": ("CreateProcessingJob", requests.processing_request(
            SETTINGS, name, "prepare", RUN_ROOT, "manual__1")),
        "train": ("CreateTrainingJob", requests.training_request(SETTINGS, name, *train, 10, "manual__1")),
        "tune": ("CreateHyperParameterTuningJob", requests.tuning_request(
            SETTINGS, "video-recsys-tune-x", *train, 10, "manual__1")),
        "model": ("CreateModel", requests.model_request(
            SETTINGS, name, RUN_ROOT + "/models/x/output/model.tar.gz", "manual__1")),
        "transform": ("CreateTransformJob", requests.transform_request(
            SETTINGS, name, name, RUN_ROOT + "/recordio/test", RUN_ROOT + "/transform", "manual__1")),
    }  # fmt: skip


def test_a_processing_request_needs_the_ecr_pull_of_its_image_as_the_execution_role() -> None:
    _, request = job_requests()["prepare"]
    needs = {(action, resource) for action, resource, _ in execution_role_permissions(request, "us-east-1", ACCOUNT)}
    repository = "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"  # the sklearn image's
    assert request["AppSpecification"]["ImageUri"].startswith("683313688378.dkr.ecr.us-east-1.amazonaws.com/")
    assert ("ecr:GetAuthorizationToken", "*") in needs
    assert {(a, repository) for a in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                      "ecr:BatchCheckLayerAvailability")} <= needs  # fmt: skip
    assert ("s3:GetObject", "arn:aws:s3:::b/p/runs/manual__1/preprocessed/*") in needs
    assert ("s3:PutObject", "arn:aws:s3:::b/p/runs/manual__1/recordio/*") in needs
    denied = [n for n in execution_role_permissions(request, "us-east-1", ACCOUNT) if not allowed(ROLE_POLICY, *n)]
    assert not denied, denied


@pytest.mark.parametrize("kind", list(job_requests()))
def test_the_execution_role_allows_everything_sagemaker_does_for_each_job(kind: str) -> None:
    operation, request = job_requests()[kind]
    call = Call("sagemaker", operation, request)
    as_role = required_permissions(call, "us-east-1", ACCOUNT, principal="execution-role")
    assert as_role, "every job the DAG starts makes SageMaker act as the role"
    denied = [need for need in as_role if not allowed(ROLE_POLICY, *need)]
    assert not denied, denied
    # The caller (the MWAA role) starts the job; it pulls no image and gets no ECR permission.
    caller = required_permissions(call, "us-east-1", ACCOUNT)
    assert not [need for need in caller if not allowed(CALLER_POLICY, *need)]
    sklearn = "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"
    assert not allowed(CALLER_POLICY, "ecr:GetAuthorizationToken", "*")
    assert not allowed(CALLER_POLICY, "ecr:BatchGetImage", sklearn)


def test_training_and_processing_calls_imply_the_pull_of_their_images() -> None:
    for kind, repository in (("train", "382416733822:repository/factorization-machines"),
                             ("preprocess", "683313688378:repository/sagemaker-scikit-learn")):  # fmt: skip
        operation, request = job_requests()[kind]
        needs = required_permissions(Call("sagemaker", operation, request), "us-east-1", ACCOUNT, "execution-role")
        assert ("ecr:BatchGetImage", f"arn:aws:ecr:us-east-1:{repository}", {}) in needs
    assert required_permissions(Call("s3", "GetObject", {"Bucket": "b", "Key": "k"}), "us-east-1", ACCOUNT,
                                principal="execution-role") == []  # fmt: skip


@pytest.mark.parametrize(
    "repository",
    [
        "arn:aws:ecr:us-east-1:999999999999:repository/sagemaker-scikit-learn",  # someone else's account
        "arn:aws:ecr:us-east-1:683313688378:repository/other-image",  # SageMaker's account, another repository
        "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn",  # another Region's
    ],
)
def test_the_execution_role_pulls_no_other_image(repository: str) -> None:
    assert not allowed(ROLE_POLICY, "ecr:BatchGetImage", repository)
    assert not allowed(
        ROLE_POLICY, "ecr:PutImage", "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"
    )


def test_the_image_accounts_mapping_is_the_image_list_of_the_plugin() -> None:
    """The template's per-Region registry accounts are those of sagemaker_images.json's image URIs."""
    mapping = yaml.load(TEMPLATE.read_text(), Loader=cfn_loader())["Mappings"]["SageMakerImageAccounts"]
    for kind, column in (("factorization-machines", "FactorizationMachines"), ("sklearn-processing", "ScikitLearn")):
        assert {region: uri.split(".")[0] for region, uri in IMAGES[kind].items()} == {
            region: row[column] for region, row in mapping.items()
        }


# InputBucketArns: read-only access to the buckets holding the DAG's input, for both roles.

OTHER = "arn:aws:s3:::other-bucket"


@pytest.mark.parametrize("policy_name", ["MwaaSageMakerPolicy", "SageMakerExecutionRole"])
@pytest.mark.parametrize("given", [[OTHER], OTHER, f"arn:aws:s3:::third,{OTHER}"], ids=["list", "one", "two"])
def test_input_buckets_are_readable_and_not_writable(policy_name: str, given) -> None:
    policy = load_policy(policy_name, {**ROLE_VALUES, "InputBucketArns": given})
    assert allowed(policy, "s3:GetObject", f"{OTHER}/key")
    assert allowed(policy, "s3:GetObject", f"{OTHER}/deep/reviews.tsv.gz")
    assert allowed(policy, "s3:ListBucket", OTHER)
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl"):
        assert not allowed(policy, action, f"{OTHER}/key"), action
    assert not allowed(policy, "s3:GetObject", "arn:aws:s3:::other-bucket-2/key")  # exactly those buckets


@pytest.mark.parametrize("policy_name", ["MwaaSageMakerPolicy", "SageMakerExecutionRole"])
@pytest.mark.parametrize("given", [None, "", [""]], ids=["default", "empty", "empty-list"])
def test_without_input_buckets_nothing_else_is_readable(policy_name: str, given) -> None:
    values = ROLE_VALUES if given is None else {**ROLE_VALUES, "InputBucketArns": given}
    policy = load_policy(policy_name, values)
    assert not allowed(policy, "s3:GetObject", f"{OTHER}/key")
    assert not allowed(policy, "s3:ListBucket", OTHER)
    assert not [s for s in policy if s.get("Sid", "").endswith("InputBuckets")]  # the Condition left them out
    assert allowed(policy, "s3:GetObject", "arn:aws:s3:::b/p/runs/x")  # the run data still is


def test_a_processing_job_reading_an_input_bucket_is_allowed_only_with_the_parameter() -> None:
    request = requests.processing_request(
        SETTINGS, "video-recsys-p-t1", "preprocess", RUN_ROOT, "manual__1", input_uri="s3://other-bucket/reviews.tsv.gz"
    )
    needs = execution_role_permissions(request, "us-east-1", ACCOUNT)
    with_buckets = load_policy("SageMakerExecutionRole", {**ROLE_VALUES, "InputBucketArns": [OTHER]})
    assert all(allowed(with_buckets, *need) for need in needs)
    assert not all(allowed(ROLE_POLICY, *need) for need in needs)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("", True), (OTHER, True), ("arn:aws-cn:s3:::a.b-c", True), ("arn:aws:s3:::*", False),
     ("arn:aws:s3:::bucket/prefix", False), ("other-bucket", False), ("arn:aws:s3:::Upper", False)],
)  # fmt: skip
def test_input_bucket_arns_are_whole_buckets_without_wildcards(value: str, ok: bool) -> None:
    import re

    pattern = yaml.load(TEMPLATE.read_text(), Loader=cfn_loader())["Parameters"]["InputBucketArns"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is ok
