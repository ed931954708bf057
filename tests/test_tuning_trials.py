"""A tuning job's trials: the engine's TrainingJobSummaries, their listing from SageMaker, the report's view of them.

The listing is tested with botocore's Stubber on a real boto3 client (moto does not
implement ListTrainingJobsForHyperParameterTuningJob): the Stubber checks our request and
the summaries against botocore's SageMaker model, so the shape is AWS's, not ours.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import boto3
import pytest
from aws_calls import Call, recording
from botocore.stub import Stubber
from iam_policy import allowed, load_policy, required_permissions
from test_tuning import tuning_request

from video_recommender import tuning_trials
from video_recommender.engine.tuning import run_tuning_job
from video_recommender.tuning_trials import (
    list_training_job_summaries,
    load_summaries,
    save_summaries,
    trials_for_report,
)

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
CONFIG = {
    "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "test:rmse"},
    "ParameterRanges": {
        "ContinuousParameterRanges": [
            {"Name": "factors_lr", "MinValue": "0.0006", "MaxValue": "0.0017", "ScalingType": "Logarithmic"}
        ],
        "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "10", "MaxValue": "80", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "mini_batch_size", "Values": ["200", "1000"]}],
    },
}


def sagemaker_client():
    return boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def shape(name: str):
    return sagemaker_client().meta.service_model.shape_for(name)


def summary(index: int, minutes: float, status: str = "Completed", value: float | None = None, **tuned: str) -> dict:
    """A HyperParameterTrainingJobSummary as SageMaker lists it."""
    created = T0 + dt.timedelta(minutes=minutes)
    out = {
        "TrainingJobName": f"video-recsys-tune-x-{index:03d}-0123abcd",
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/video-recsys-tune-x-{index:03d}-0123abcd",
        "TuningJobName": "video-recsys-tune-x",
        "CreationTime": created,
        "TrainingStartTime": created + dt.timedelta(seconds=30),
        "TrainingEndTime": created + dt.timedelta(minutes=5),
        "TrainingJobStatus": status,
        "TunedHyperParameters": tuned or {"factors_lr": "0.001", "epochs": "20", "mini_batch_size": "200"},
        "ObjectiveStatus": "Succeeded" if value is not None else "Pending" if status == "InProgress" else "Failed",
    }
    if value is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": "Minimize",
            "MetricName": "test:rmse",
            "Value": value,
        }
    if status == "Failed":
        out["FailureReason"] = "AlgorithmError: out of memory"
    return out


# --- the local engine lists its trials as SageMaker does ------------------------------------


def test_the_engine_lists_every_trial_as_sagemaker_does(job_dir: Path) -> None:
    """Failed and early-stopped trials included, each summary valid against botocore's model."""
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "factors_lr", "Values": ["0", "0.01"]},
            {"Name": "mini_batch_size", "Values": ["0", "100"]},  # 0 is invalid: that trial fails
        ],
        "ContinuousParameterRanges": [
            {"Name": "linear_lr", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
        ],
    }
    request = tuning_request(
        job_dir, strategy="Random", jobs=5, parallel=1, ranges=ranges, TrainingJobEarlyStoppingType="Auto"
    )
    request["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "6"
    summaries: list[dict] = []
    describe = run_tuning_job(request, Path, emit=lambda _: None, cores=2, summaries=summaries)
    assert describe["HyperParameterTuningJobStatus"] == "Completed", describe.get("FailureReason")

    # the Describe response keeps to DescribeHyperParameterTuningJob's members
    assert set(describe) <= set(shape("DescribeHyperParameterTuningJobResponse").members)
    assert len(summaries) == 5
    statuses = Counter(s["TrainingJobStatus"] for s in summaries)
    assert statuses["Failed"] >= 1 and statuses["Stopped"] >= 1, statuses
    counters = describe["TrainingJobStatusCounters"]
    assert (statuses["Completed"], statuses["Stopped"], statuses["Failed"]) == (
        counters["Completed"], counters["Stopped"], counters["NonRetryableError"])  # fmt: skip
    assert Counter(s["ObjectiveStatus"] for s in summaries) == +Counter(describe["ObjectiveStatusCounters"])
    for s in summaries:
        assert s["TuningJobName"] == "fm-hpo-test"
        assert isinstance(s["CreationTime"], dt.datetime) and s["CreationTime"].tzinfo is not None
        assert set(s["TunedHyperParameters"]) == {"factors_lr", "mini_batch_size", "linear_lr"}
        assert all(isinstance(v, str) for v in s["TunedHyperParameters"].values())
        metric = s.get("FinalHyperParameterTuningJobObjectiveMetric")
        if s["TrainingJobStatus"] == "Failed":
            assert s["ObjectiveStatus"] == "Failed" and metric is None and s["FailureReason"]
            assert s["TunedHyperParameters"]["mini_batch_size"] == "0"
        else:  # a job stopped early keeps the objective it emitted, and the tuning job used it
            assert s["ObjectiveStatus"] == "Succeeded"
            assert metric == {"Type": "Minimize", "MetricName": "test:rmse", "Value": pytest.approx(metric["Value"])}
            assert isinstance(metric["Value"], float)
    best = describe["BestTrainingJob"]
    scored = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
    lowest = min(scored, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert best["TrainingJobName"] == lowest["TrainingJobName"]
    assert best["TunedHyperParameters"] == lowest["TunedHyperParameters"]

    # SageMaker's own model accepts them as a ListTrainingJobsForHyperParameterTuningJob page
    client = sagemaker_client()
    with Stubber(client) as stub:
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": summaries})
        assert list_training_job_summaries(client, "fm-hpo-test") == summaries

    report = trials_for_report(summaries, request["HyperParameterTuningJobConfig"])
    assert [t["job"] for t in report["trials"]] == [
        s["TrainingJobName"] for s in sorted(summaries, key=lambda s: s["CreationTime"])
    ]
    assert report["trials"][report["best_trial"] - 1]["job"] == best["TrainingJobName"]


def test_without_summaries_the_engine_runs_as_before(job_dir: Path) -> None:
    """``summaries`` is optional: a failed tuning job still lists the trials that ran."""
    request = tuning_request(job_dir, jobs=2, parallel=1)
    request["TrainingJobDefinition"]["StaticHyperParameters"]["mini_batch_size"] = "0"  # every job fails
    summaries: list[dict] = []
    describe = run_tuning_job(request, Path, emit=lambda _: None, cores=2, summaries=summaries)
    assert describe["HyperParameterTuningJobStatus"] == "Failed"
    assert [s["TrainingJobStatus"] for s in summaries] == ["Failed", "Failed"]
    assert {s["ObjectiveStatus"] for s in summaries} == {"Failed"}
    assert trials_for_report(summaries, request["HyperParameterTuningJobConfig"])["best_trial"] is None


# --- listing from SageMaker -----------------------------------------------------------------


def test_the_listing_follows_next_token_across_pages() -> None:
    client = sagemaker_client()
    first = [summary(i, i, value=1.0 + i / 10) for i in range(1, 4)]
    second = [summary(4, 4, "Failed"), summary(5, 5, "InProgress")]
    with Stubber(client) as stub, recording() as calls:
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": first, "NextToken": "page-2"},
            {"HyperParameterTuningJobName": "video-recsys-tune-x", "MaxResults": 100},
        )
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": second},
            {"HyperParameterTuningJobName": "video-recsys-tune-x", "MaxResults": 100, "NextToken": "page-2"},
        )
        listed = list_training_job_summaries(client, "video-recsys-tune-x")
        stub.assert_no_pending_responses()
    assert listed == first + second
    # the MWAA execution role may make these calls (tests/iam_policy.py maps them to the tuning job's ARN)
    assert [c.operation for c in calls] == ["ListTrainingJobsForHyperParameterTuningJob"] * 2
    policy = load_policy("MwaaSageMakerPolicy", IAM_VALUES)
    for call in calls:
        needs = required_permissions(call, "us-east-1", "123456789012")
        assert needs == [(
            "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
            "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/video-recsys-tune-x", {})]  # fmt: skip
        assert all(allowed(policy, *need) for need in needs)


IAM_VALUES = {
    "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "DataBucketName": "data",
    "DataPrefix": "recsys", "JobNamePrefix": "video-recsys",
    "SageMakerExecutionRole.Arn": "arn:aws:iam::123456789012:role/recsys-sagemaker",
}  # fmt: skip


def test_the_listing_is_allowed_only_for_the_projects_tuning_jobs() -> None:
    policy = load_policy("MwaaSageMakerPolicy", IAM_VALUES)

    def permitted(name: str) -> bool:
        call = Call("sagemaker", "ListTrainingJobsForHyperParameterTuningJob", {"HyperParameterTuningJobName": name})
        return all(allowed(policy, *need) for need in required_permissions(call, "us-east-1", "123456789012"))

    assert permitted("video-recsys-tune-abc-t1")
    assert not permitted("someone-elses-tuning")
    # only on tuning jobs: the action is not granted on the project's other resource types
    for kind in ("training-job", "model", "transform-job", "processing-job"):
        resource = f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/video-recsys-x"
        assert not allowed(policy, "sagemaker:ListTrainingJobsForHyperParameterTuningJob", resource), kind
    assert not allowed(policy, "sagemaker:ListTrainingJobsForHyperParameterTuningJob", "*")


# --- the report's view -----------------------------------------------------------------------


def test_trials_are_numbered_by_creation_time_with_the_best_so_far() -> None:
    summaries = [  # listed by name (the API's default order), created in another order
        summary(1, 30, value=0.90),
        summary(2, 0, value=0.95, factors_lr="0.0007", epochs="12", mini_batch_size="1000"),
        summary(3, 10, "Failed"),
        summary(4, 20, "Stopped", value=0.92),
        summary(5, 40, "InProgress"),
    ]
    report = trials_for_report(summaries, CONFIG)
    trials = report["trials"]
    assert [t["job"][-12:-9] for t in trials] == ["002", "003", "004", "001", "005"]
    assert [t["number"] for t in trials] == [1, 2, 3, 4, 5]
    assert [t["status"] for t in trials] == ["Completed", "Failed", "Stopped", "Completed", "InProgress"]
    assert [t["objective_status"] for t in trials] == ["Succeeded", "Failed", "Succeeded", "Succeeded", "Pending"]
    assert [t["value"] for t in trials] == [0.95, None, 0.92, 0.90, None]
    assert [t["best_so_far"] for t in trials] == [0.95, 0.95, 0.92, 0.90, 0.90]
    assert report["best_trial"] == 4 and report["direction"] == "Minimize" and report["metric"] == "test:rmse"
    assert trials[0]["tuned"] == {"factors_lr": 0.0007, "epochs": 12, "mini_batch_size": "1000"}
    assert trials[0]["created"] == "2026-12-01T10:00:00+00:00"
    assert trials[1]["failure_reason"] == "AlgorithmError: out of memory"


def test_only_an_objective_the_tuning_job_used_counts() -> None:
    """A metric next to ObjectiveStatus Pending or Failed is not the trial's objective (AWS's ObjectiveStatus)."""
    pending = {**summary(2, 1, "InProgress"), "FinalHyperParameterTuningJobObjectiveMetric": {
        "MetricName": "test:rmse", "Value": 0.1}}  # fmt: skip
    failed = {**pending, "TrainingJobName": "video-recsys-tune-x-003-0123abcd", "ObjectiveStatus": "Failed"}
    report = trials_for_report([summary(1, 0, value=0.9), pending, failed], CONFIG)
    assert [t["value"] for t in report["trials"]] == [0.9, None, None]
    assert report["best_trial"] == 1


def test_a_maximized_objective_keeps_the_highest() -> None:
    config = {**CONFIG, "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "test:binary_f_beta"}}
    report = trials_for_report([summary(1, 0, value=0.5), summary(2, 1, value=0.7), summary(3, 2, value=0.6)], config)
    assert report["direction"] == "Maximize" and report["metric"] == "test:binary_f_beta"
    assert [t["best_so_far"] for t in report["trials"]] == [0.5, 0.7, 0.7]
    assert report["best_trial"] == 2


def test_each_tuned_parameter_has_its_kind_scaling_and_axis() -> None:
    odd = summary(2, 1, value=1.0, factors_lr="0.001", epochs="20", mini_batch_size="500")  # a value outside Values
    report = trials_for_report([summary(1, 0, value=1.0), odd], CONFIG)
    assert report["parameters"] == [
        {"name": "factors_lr", "kind": "continuous", "scaling": "Logarithmic", "axis": "logarithmic"},
        {"name": "epochs", "kind": "integer", "scaling": "Linear", "axis": "linear"},
        {"name": "mini_batch_size", "kind": "categorical", "scaling": None, "axis": "category",
         "categories": ["200", "1000", "500"]},
    ]  # fmt: skip
    auto = {**CONFIG, "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "factors_lr", "MinValue": "0.001",
                                                                         "MaxValue": "0.1"}]}}  # fmt: skip
    assert trials_for_report([summary(1, 0, value=1.0)], auto)["parameters"][0] == {
        "name": "factors_lr", "kind": "continuous", "scaling": "Auto", "axis": "linear"}  # fmt: skip


def test_no_summaries_no_trials() -> None:
    assert trials_for_report([], CONFIG) is None


# --- the local stand-in for the listing --------------------------------------------------------


def test_summaries_round_trip_through_json_with_their_datetimes(tmp_path: Path, monkeypatch) -> None:
    summaries = [summary(1, 0, value=0.9), summary(2, 1, "Failed")]
    written = []
    real = tuning_trials.write_atomically
    monkeypatch.setattr(tuning_trials, "write_atomically", lambda p, data: (written.append(p), real(p, data)))
    path = tmp_path / "tuning" / "training_job_summaries.json"
    save_summaries(path, summaries)
    assert written == [path]  # through the atomic writer
    assert '"CreationTime": "2026-12-01T10:00:00+00:00"' in path.read_text()
    assert load_summaries(path) == summaries


def test_the_timestamp_fields_are_those_of_botocores_model() -> None:
    members = shape("HyperParameterTrainingJobSummary").members
    assert set(tuning_trials.TIMESTAMPS) == {name for name, m in members.items() if m.type_name == "timestamp"}
