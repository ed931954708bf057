"""Cost caps in the requests, waits derived from them, tags and prefixes in SageMaker's rules."""

from __future__ import annotations

import math
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from video_recommender import sagemaker_requests as requests
from video_recommender.settings import Settings, SettingsError
from video_recommender.waits import START_STOP_MARGIN_SECONDS, wait_budget

SETTINGS = Settings(storage_root="s3://b/p", backend="sagemaker", sagemaker_role_arn="arn:aws:iam::123456789012:role/r")
RUN_ID = "manual__2026-12-01T10:00:00+00:00"


def _training(settings: Settings = SETTINGS) -> dict:
    return requests.training_request(
        settings, "video-recsys-train-x", "s3://b/p/tr", "s3://b/p/va", "s3://b/p/m", 9, RUN_ID
    )


def _tuning(settings: Settings = SETTINGS) -> dict:
    return requests.tuning_request(
        settings, "video-recsys-hpo-x", "s3://b/p/tr", "s3://b/p/va", "s3://b/p/m", 9, RUN_ID
    )


def _validate(operation: str, request: dict) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def test_the_default_caps_are_in_every_request_and_valid_for_the_api() -> None:
    training, tuning = _training(), _tuning()
    assert training["StoppingCondition"] == {"MaxRuntimeInSeconds": 3 * 3600}
    assert training["EnableManagedSpotTraining"] is False
    limits = tuning["HyperParameterTuningJobConfig"]["ResourceLimits"]
    assert limits == {"MaxNumberOfTrainingJobs": 16, "MaxParallelTrainingJobs": 2, "MaxRuntimeInSeconds": 8 * 3600}
    assert tuning["TrainingJobDefinition"]["StoppingCondition"] == training["StoppingCondition"]
    processing = requests.processing_request(SETTINGS, "video-recsys-prepare-x", "prepare", "s3://b/p", RUN_ID)
    assert processing["StoppingCondition"] == {"MaxRuntimeInSeconds": 2 * 3600}
    _validate("CreateTrainingJob", requests.name_for_try(training, 1))
    _validate("CreateHyperParameterTuningJob", requests.name_for_try(tuning, 1))
    _validate("CreateProcessingJob", requests.name_for_try(processing, 1))


def test_caps_and_managed_spot_come_from_the_settings() -> None:
    settings = Settings.from_env(
        {"RECOMMENDER_SAGEMAKER_ROLE_ARN": SETTINGS.sagemaker_role_arn,
         "RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS": "1800", "RECOMMENDER_MANAGED_SPOT_TRAINING": "true",
         "RECOMMENDER_SPOT_MAX_WAIT_SECONDS": "5400", "RECOMMENDER_TUNING_MAX_RUNTIME_SECONDS": "7200",
         "RECOMMENDER_TUNING_MAX_JOBS": "8", "RECOMMENDER_TUNING_MAX_PARALLEL_JOBS": "4",
         "RECOMMENDER_PROCESSING_MAX_RUNTIME_SECONDS": "900", "RECOMMENDER_TRANSFORM_MAX_RUNTIME_SECONDS": "600"}
    )  # fmt: skip
    training = _training(settings)
    assert training["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 5400}
    assert training["EnableManagedSpotTraining"] is True
    tuning = _tuning(settings)
    assert tuning["HyperParameterTuningJobConfig"]["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 4, "MaxRuntimeInSeconds": 7200}  # fmt: skip
    assert tuning["TrainingJobDefinition"]["EnableManagedSpotTraining"] is True
    assert settings.transform_max_runtime_seconds == 600
    _validate("CreateTrainingJob", requests.name_for_try(training, 1))
    _validate("CreateHyperParameterTuningJob", requests.name_for_try(tuning, 1))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RECOMMENDER_MANAGED_SPOT_TRAINING": "yes", "RECOMMENDER_SPOT_MAX_WAIT_SECONDS": "60"},
            "MaxWaitTimeInSeconds >= ",
        ),
        ({"RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS": "0"}, "expected at least 1"),
        ({"RECOMMENDER_TUNING_MAX_RUNTIME_SECONDS": "60"}, "expected at least 120"),
        ({"RECOMMENDER_CHECK_INTERVAL": "0"}, "expected at least"),
        ({"RECOMMENDER_TUNING_MAX_JOBS": "many"}, "expected an integer"),
        ({"RECOMMENDER_TRAINING_MAX_RUNTIME_SECONDS": str(29 * 86400)}, "expected at most 2419200"),
        ({"RECOMMENDER_PROCESSING_MAX_RUNTIME_SECONDS": "777601"}, "expected at most 777600"),
        ({"RECOMMENDER_TUNING_MAX_RUNTIME_SECONDS": "15768001"}, "expected at most 15768000"),
        ({"RECOMMENDER_JOB_RETRIES": "99"}, "expected at most 98"),
        ({"RECOMMENDER_TRAIN_SHARDS": "2", "RECOMMENDER_TRAINING_INSTANCE_COUNT": "4"}, "some would get none"),
    ],
)
def test_bad_caps_are_refused_naming_the_setting(env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env(env)
    assert next(iter(env)) in str(caught.value)


def test_waits_last_as_long_as_each_job_may_run() -> None:
    interval = 30
    training = wait_budget("training", _training(), interval, 0)
    assert training.seconds == 3 * 3600 + START_STOP_MARGIN_SECONDS
    assert training.max_attempts == math.ceil(training.seconds / interval) + 1 > 60  # the provider's default
    spot = Settings.from_env({"RECOMMENDER_MANAGED_SPOT_TRAINING": "1", "RECOMMENDER_SPOT_MAX_WAIT_SECONDS": "36000"})
    assert wait_budget("training", _training(spot), interval, 0).seconds == 36000 + START_STOP_MARGIN_SECONDS
    assert wait_budget("tuning", _tuning(), interval, 0).seconds == 8 * 3600 + START_STOP_MARGIN_SECONDS
    assert (
        wait_budget("transform", {"TransformJobName": "t"}, interval, 7200).seconds == 7200 + START_STOP_MARGIN_SECONDS
    )
    processing = requests.processing_request(SETTINGS, "p", "prepare", "s3://b/p", RUN_ID)
    assert wait_budget("processing", processing, 1, 0).max_attempts == 2 * 3600 + START_STOP_MARGIN_SECONDS + 1
    # A tuning job without an overall limit: rounds of jobs, each up to its own limit.
    unlimited = _tuning()
    del unlimited["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"]
    assert wait_budget("tuning", unlimited, interval, 0).seconds == 8 * 3 * 3600 + START_STOP_MARGIN_SECONDS


def _in_tag_charset(text: str, shape: str) -> bool:
    """Whether ``text`` matches SageMaker's own pattern for the shape, as botocore's service model has it.

    ``regex`` (it knows ``\\p{L}``; here through cfn-lint's pins) runs the pattern itself, so
    this is not a second copy of the code's character test.
    """
    import regex

    pattern = botocore.session.get_session().get_service_model("sagemaker").shape_for(shape).metadata["pattern"]
    return regex.fullmatch(pattern, text) is not None


@pytest.mark.parametrize(
    "run_id", [RUN_ID, "my run #1!", "nightly~2026*12", "über-lauf (zwei)", "scheduled__" + "x" * 300, "日本語ラン"]
)
def test_tags_are_always_in_sagemakers_charset(run_id: str) -> None:
    for request in (
        requests.training_request(SETTINGS, "n", "s3://b/t", "s3://b/v", "s3://b/m", 9, run_id),
        requests.model_request(SETTINGS, "n", "s3://b/m.tar.gz", run_id),
        requests.transform_request(SETTINGS, "n", "m", "s3://b/t", "s3://b/o", run_id),
    ):
        for tag in request["Tags"]:
            assert _in_tag_charset(tag["Key"], "TagKey") and _in_tag_charset(tag["Value"], "TagValue"), tag
            assert 1 <= len(tag["Key"]) <= 128 and len(tag["Value"]) <= 256
    assert requests.tag_value(RUN_ID) == RUN_ID  # Airflow's own run ids are kept as they are
    assert requests.tag_value("my run #1!") == "my run _1_"


def test_channels_and_transform_input_are_folder_prefixes() -> None:
    training = _training()
    assert [c["DataSource"]["S3DataSource"]["S3Uri"] for c in training["InputDataConfig"]] == [
        "s3://b/p/tr/", "s3://b/p/va/"]  # fmt: skip
    transform = requests.transform_request(SETTINGS, "t", "m", "s3://b/p/recordio/test", "s3://b/p/transform", RUN_ID)
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://b/p/recordio/test/"


def test_a_prefix_without_its_slash_takes_sibling_objects_as_s3_does(tmp_path: Path) -> None:
    from video_recommender.engine.training import input_objects

    for rel in ("test/test_00000.protobuf", "test-old/test_00000.protobuf", "test.bak"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    loose = input_objects({"S3Uri": str(tmp_path / "test"), "S3DataType": "S3Prefix"}, Path)
    assert sorted(name for _, name in loose) == ["-old/test_00000.protobuf", ".bak", "test_00000.protobuf"]
    folder = input_objects({"S3Uri": f"{tmp_path / 'test'}/", "S3DataType": "S3Prefix"}, Path)
    assert [name for _, name in folder] == ["test_00000.protobuf"]


def test_scale_out_sets_the_instance_count_and_one_shard_per_instance() -> None:
    settings = Settings.from_env({"RECOMMENDER_TRAINING_INSTANCE_COUNT": "4"})
    assert (settings.training_instance_count, settings.recordio_shards) == (4, 4)
    assert _training(settings)["ResourceConfig"]["InstanceCount"] == 4
    assert _tuning(settings)["TrainingJobDefinition"]["ResourceConfig"]["InstanceCount"] == 4
    assert Settings.from_env({"RECOMMENDER_TRAIN_SHARDS": "8"}).recordio_shards == 8
    prepare = requests.processing_request(settings, "p", "prepare", "s3://b/p", RUN_ID)
    assert prepare["AppSpecification"]["ContainerArguments"][-2:] == ["--shards", "4"]
    assert all(
        c["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
        for c in _training(settings)["InputDataConfig"]
    )
