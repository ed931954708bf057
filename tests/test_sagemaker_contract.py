"""Every request the DAG can build passes botocore's validation against the real SageMaker model.

botocore ships the SageMaker service model (the API's own JSON definition); its
ParamValidator is what boto3 runs before sending a request. Nothing here calls AWS.
"""

from __future__ import annotations

import botocore.session
import pytest
from botocore.validate import ParamValidator

from video_recommender import tasks
from video_recommender.sagemaker_requests import name_for_try
from video_recommender.settings import Settings
from video_recommender.storage import uri

SETTINGS = Settings(
    storage_root="s3://recsys-bucket/prefix",
    backend="sagemaker",
    sagemaker_role_arn="arn:aws:iam::123456789012:role/recsys-sagemaker",
    region="eu-west-1",
)
RUN = tasks.run_of(SETTINGS, "manual__2026-11-25T10:00:00+00:00")
SERVICE = botocore.session.get_session().get_service_model("sagemaker")


def validate(operation: str, request: dict) -> None:
    report = ParamValidator().validate(request, SERVICE.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def prepared(predictor_type: str) -> dict:
    root = uri(RUN.paths.root)
    return {
        "feature_dim": 183455,
        "predictor_type": predictor_type,
        "train_uri": f"{root}/recordio/train",
        "validate_uri": f"{root}/recordio/validate",
        "test_uri": f"{root}/recordio/test",
    }


@pytest.mark.parametrize("predictor_type", ["regressor", "binary_classifier"])
def test_training_branch_requests_are_valid(predictor_type: str) -> None:
    training = name_for_try(tasks.training_request(RUN, prepared(predictor_type), SETTINGS), 1)
    validate("CreateTrainingJob", training)
    assert training["HyperParameters"]["predictor_type"] == predictor_type
    described = {"Training": {"ModelArtifacts": {"S3ModelArtifacts": "s3://recsys-bucket/prefix/m/model.tar.gz"}}}
    transform = name_for_try(tasks.transform_request(RUN, prepared(predictor_type), described, None, SETTINGS), 2)
    validate("CreateModel", transform["Model"])
    validate("CreateTransformJob", transform["Transform"])
    assert transform["Transform"]["ModelName"] == transform["Model"]["ModelName"]


@pytest.mark.parametrize("predictor_type", ["regressor", "binary_classifier"])
def test_tuning_branch_requests_are_valid(predictor_type: str) -> None:
    tuning = name_for_try(tasks.tuning_request(RUN, prepared(predictor_type), SETTINGS), 1)
    validate("CreateHyperParameterTuningJob", tuning)
    objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    assert objective == ("test:rmse" if predictor_type == "regressor" else "test:binary_classification_cross_entropy")
    described = {
        "Tuning": {
            "BestTrainingJob": {"TrainingJobName": tuning["HyperParameterTuningJobName"] + "-007-0123abcd"},
            "TrainingJobDefinition": tuning["TrainingJobDefinition"],
        }
    }
    transform = name_for_try(tasks.transform_request(RUN, prepared(predictor_type), None, described, SETTINGS), 1)
    validate("CreateModel", transform["Model"])
    validate("CreateTransformJob", transform["Transform"])
    model_url = transform["Model"]["PrimaryContainer"]["ModelDataUrl"]
    assert (
        model_url == f"{uri(RUN.paths.models)}/{tuning['HyperParameterTuningJobName']}-007-0123abcd/output/model.tar.gz"
    )


def test_the_validator_does_catch_a_broken_request() -> None:
    training = tasks.training_request(RUN, prepared("regressor"), SETTINGS)
    del training["OutputDataConfig"]
    training["ResourceConfig"]["InstanceCount"] = "1"
    report = ParamValidator().validate(training, SERVICE.operation_model("CreateTrainingJob").input_shape)
    assert "OutputDataConfig" in report.generate_report() and "InstanceCount" in report.generate_report()
