"""The MWAA execution-role policy in mwaa/cloudformation/recommender-iam.yaml, and its evaluator."""

from __future__ import annotations

import pytest
from aws_calls import Call
from iam_policy import allowed, load_policy, required_permissions

ROLE = "arn:aws:iam::123456789012:role/recsys-sagemaker"
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
