"""Settings from the environment and the SageMaker request builders (the backend seam)."""

from __future__ import annotations

import re

import pytest

from video_recommender import sagemaker_requests as requests
from video_recommender.engine.hyperparameters import parse_hyperparameters
from video_recommender.settings import DEFAULT_HYPERPARAMETERS, Settings, SettingsError

SETTINGS = Settings(storage_root="s3://bucket/prefix", sagemaker_role_arn="arn:aws:iam::123456789012:role/sm")


def test_settings_defaults_and_overrides() -> None:
    s = Settings.from_env({"AIRFLOW_HOME": "/opt/airflow"})
    assert s.storage_root == "file:///opt/airflow/recommender-data"
    assert (s.backend, s.run_hyperparameter_opt) == ("local", False)
    s = Settings.from_env(
        {"RECOMMENDER_STORAGE_ROOT": "s3://b/p/", "RECOMMENDER_BACKEND": "SageMaker", "RECOMMENDER_RUN_HPO": "yes"}
    )
    assert (s.storage_root, s.backend, s.run_hyperparameter_opt) == ("s3://b/p", "sagemaker", True)
    assert Settings.from_env({"RECOMMENDER_STORAGE_ROOT": "/tmp/x"}).storage_root == "file:///tmp/x"


def test_settings_from_airflow_configuration_options() -> None:
    # MWAA's AirflowConfigurationOptions {"recommender.backend": "sagemaker"} arrive as AIRFLOW__RECOMMENDER__BACKEND
    s = Settings.from_env(
        {"AIRFLOW__RECOMMENDER__BACKEND": "sagemaker", "AIRFLOW__RECOMMENDER__STORAGE_ROOT": "s3://b/p"}
    )
    assert (s.backend, s.storage_root) == ("sagemaker", "s3://b/p")
    both = {"AIRFLOW__RECOMMENDER__BACKEND": "sagemaker", "RECOMMENDER_BACKEND": "local"}
    assert Settings.from_env(both).backend == "local"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECOMMENDER_BACKEND": "emr"}, "expected one of local, sagemaker"),
        ({"RECOMMENDER_RUN_HPO": "maybe"}, "true or false"),
    ],
)
def test_bad_settings_are_named(env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_default_hyperparameters_are_valid_for_fm() -> None:
    hp = parse_hyperparameters({**DEFAULT_HYPERPARAMETERS, "feature_dim": "10"})
    assert hp["epochs"] > 1 and hp["factors_lr"] > 0.0001


def test_job_names_are_valid_unique_per_run_and_try() -> None:
    runs = ("manual__2026-11-25T10:00:00+00:00", "scheduled__2026-11-26T00:00:00+00:00")
    names = set()
    for run in runs:
        request = {"TrainingJobName": requests.job_name("video-recsys", "train", run)}
        for try_number in (1, 2, 99):
            names.add(requests.name_for_try(request, try_number)["TrainingJobName"])
    assert len(names) == 6
    long = requests.job_name("a" * 80 + "_weird name", "transform", "r")
    tuning = requests.job_name("video-recsys", "hpo", "r", max_length=requests.MAX_TUNING_JOB_NAME)
    for name in [*names, requests.name_for_try({"ModelName": long}, 99)["ModelName"]]:
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", name) and len(name) <= 63
    assert len(requests.name_for_try({"HyperParameterTuningJobName": tuning}, 99)["HyperParameterTuningJobName"]) <= 32
    with pytest.raises(ValueError, match="does not fit"):
        requests.name_for_try({}, 100)


def test_name_for_try_renames_every_job_and_model_and_nothing_else() -> None:
    config = {
        "Model": {"ModelName": "m", "PrimaryContainer": {}},
        "Transform": {"TransformJobName": "t", "ModelName": "m"},
    }
    renamed = requests.name_for_try(config, 3)
    assert renamed["Model"]["ModelName"] == renamed["Transform"]["ModelName"] == "m-t3"
    assert renamed["Transform"]["TransformJobName"] == "t-t3"
    assert config["Model"]["ModelName"] == "m"  # a copy: the XCom value is not touched


def test_training_request_shape() -> None:
    req = requests.training_request(SETTINGS, "job", "s3://b/train", "s3://b/validate", "s3://b/models", 1234, "run-1")
    assert req["HyperParameters"]["feature_dim"] == "1234"
    assert all(isinstance(v, str) for v in req["HyperParameters"].values())
    assert [c["ChannelName"] for c in req["InputDataConfig"]] == ["train", "test"]
    assert all(c["ContentType"] == "application/x-recordio-protobuf" for c in req["InputDataConfig"])
    assert (
        req["AlgorithmSpecification"]["TrainingImage"]
        == "382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1"
    )
    assert req["RoleArn"] == SETTINGS.sagemaker_role_arn and req["Tags"]


def test_transform_request_sets_formats_explicitly() -> None:
    req = requests.transform_request(SETTINGS, "t", "m", "s3://b/test", "s3://b/out", "run-1")
    assert req["TransformInput"]["SplitType"] == "RecordIO"
    assert req["TransformInput"]["ContentType"] == "application/x-recordio-protobuf"
    assert req["TransformOutput"] == {
        "S3OutputPath": "s3://b/out",
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
    }


def test_image_registry_has_the_documented_regions() -> None:
    # shared/reference/factorization-machines.md §9
    assert requests.fm_image_uri("us-east-1") == "382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1"
    assert requests.fm_image_uri("us-west-2") == "174872318107.dkr.ecr.us-west-2.amazonaws.com/factorization-machines:1"
    assert requests.fm_image_uri("eu-west-1") == "438346466558.dkr.ecr.eu-west-1.amazonaws.com/factorization-machines:1"


def test_unknown_region_is_an_error() -> None:
    with pytest.raises(ValueError, match="no factorization-machines image known for region 'mars-1'"):
        requests.fm_image_uri("mars-1")
