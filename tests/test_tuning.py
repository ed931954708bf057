"""Local hyper-parameter tuning: strategies, limits, best job, validation, early stopping."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from fm_jobs import training_request

from video_recommender.engine.artifacts import read_model_tar_gz
from video_recommender.engine.training import run_training_job
from video_recommender.engine.tuning import run_tuning_job, trial_job_name


def tuning_request(base: Path, strategy: str = "Bayesian", jobs: int = 4, parallel: int = 2, **config) -> dict:
    definition = training_request(base, epochs="4")
    static = dict(definition.pop("HyperParameters"))
    ranges = config.pop("ranges", None) or {
        "ContinuousParameterRanges": [
            {"Name": "factors_lr", "MinValue": "0.001", "MaxValue": "0.03", "ScalingType": "Logarithmic"}
        ],
        "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "2", "MaxValue": "6"}],
    }
    for group in ranges.values():
        for r in group:
            static.pop(r["Name"], None)
    definition.pop("TrainingJobName")
    return {
        "HyperParameterTuningJobName": "fm-hpo-test",
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "test:rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": ranges,
            **config,
        },
        "TrainingJobDefinition": {**definition, "StaticHyperParameters": static},
    }


def run(request: dict) -> tuple[dict, list[str]]:
    lines: list[str] = []
    return run_tuning_job(request, Path, emit=lines.append, cores=2), lines


def trial_values(lines: list[str]) -> dict[str, float]:
    found = (re.search(r"(fm-hpo-test-\d{3}-[0-9a-f]{8}) \w+: test:rmse=([\d.]+)", line) for line in lines)
    return {m.group(1): float(m.group(2)) for m in found if m}


def test_bayesian_search_finds_and_reports_the_best_job(job_dir: Path) -> None:
    describe, lines = run(tuning_request(job_dir, jobs=6, parallel=2))
    assert describe["HyperParameterTuningJobStatus"] == "Completed", describe.get("FailureReason")
    assert describe["TrainingJobStatusCounters"]["Completed"] == 6
    assert describe["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    assert "6 training jobs, 2 at a time" in lines[0]
    values = trial_values(lines)
    assert len(values) == 6
    best = describe["BestTrainingJob"]
    assert best["TrainingJobName"] == min(values, key=values.get)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Minimize", "MetricName": "test:rmse", "Value": pytest.approx(min(values.values()), abs=1e-5)
    }  # fmt: skip
    assert set(best["TunedHyperParameters"]) == {"factors_lr", "epochs"}
    assert all(isinstance(v, str) for v in best["TunedHyperParameters"].values())
    for job in values:  # every trial is a training job with its own artifact
        assert re.fullmatch(r"fm-hpo-test-\d{3}-[0-9a-f]{8}", job)
        assert (job_dir / "models" / job / "output" / "model.tar.gz").exists()
    tuned_model = read_model_tar_gz(
        (job_dir / "models" / best["TrainingJobName"] / "output" / "model.tar.gz").read_bytes()
    )
    assert tuned_model.num_factors == 8


@pytest.mark.parametrize("strategy", ["Random", "Hyperband"])
def test_other_strategies_run_their_budget(job_dir: Path, strategy: str) -> None:
    describe, _ = run(tuning_request(job_dir, strategy=strategy, jobs=4, parallel=1))
    assert describe["HyperParameterTuningJobStatus"] == "Completed", describe.get("FailureReason")
    counts = describe["TrainingJobStatusCounters"]
    assert counts["Completed"] + counts["Stopped"] == 4


def test_grid_search_covers_the_categorical_grid(job_dir: Path) -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "factors_lr", "Values": ["0.003", "0.01"]},
            {"Name": "epochs", "Values": ["2", "3", "4"]},
        ]
    }
    describe, lines = run(tuning_request(job_dir, strategy="Grid", jobs=100, parallel=2, ranges=ranges))
    assert describe["TrainingJobStatusCounters"]["Completed"] == 6  # the grid, not MaxNumberOfTrainingJobs
    tried = {
        tuple(sorted(ast.literal_eval(line[line.index("{") :]).items())) for line in lines if " Completed: " in line
    }
    assert len(tried) == 6


def test_early_stopping_stops_hopeless_jobs(job_dir: Path) -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "factors_lr", "Values": ["0", "0.01"]},
            {"Name": "linear_lr", "Values": ["0", "0.01"]},
        ]
    }
    request = tuning_request(
        job_dir, strategy="Random", jobs=10, parallel=1, ranges=ranges, TrainingJobEarlyStoppingType="Auto"
    )
    request["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "8"
    describe, _ = run(request)
    assert describe["HyperParameterTuningJobStatus"] == "Completed"
    assert describe["TrainingJobStatusCounters"]["Stopped"] >= 1
    assert describe["BestTrainingJob"]["TunedHyperParameters"] == {"factors_lr": "0.01", "linear_lr": "0.01"}


def test_a_job_stopped_early_keeps_its_model_and_metrics(job_dir: Path) -> None:
    lines: list[str] = []
    describe = run_training_job(training_request(job_dir, epochs="5"), Path, lines.append, on_epoch=lambda e, m: e == 1)
    assert describe["TrainingJobStatus"] == "Stopped"
    assert (
        sum(bool(re.fullmatch(r"#quality_metric: host=\S+, epoch=\d+, train rmse <loss>=\S+", line)) for line in lines)
        == 2
    )
    assert describe["FinalMetricDataList"][0]["MetricName"] == "test:rmse"
    assert Path(describe["ModelArtifacts"]["S3ModelArtifacts"]).exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0].update(
                Name="num_factors"
            ),
            "'num_factors' is not tunable",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(
                MetricName="test:binary_f_beta", Type="Maximize"
            ),
            "needs predictor_type=binary_classifier",
        ),
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Grid"), "categorical parameter ranges only"),
        (
            lambda r: r["TrainingJobDefinition"].update(
                InputDataConfig=r["TrainingJobDefinition"]["InputDataConfig"][:1]
            ),
            "has none",
        ),
        (lambda r: r.update(HyperParameterTuningJobName="x" * 33), "1 to 32 characters"),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(Type="Maximize"),
            "must be Minimized",
        ),
    ],
)
def test_invalid_requests_fail_with_a_reason(job_dir: Path, change, reason: str) -> None:
    request = tuning_request(job_dir)
    change(request)
    describe, _ = run(request)
    assert describe["HyperParameterTuningJobStatus"] == "Failed"
    assert reason in describe["FailureReason"]


def test_trial_names_follow_sagemakers_pattern() -> None:
    name = trial_job_name("video-recsys-hpo-0123456789-t1", 7)
    assert re.fullmatch(r"video-recsys-hpo-0123456789-t1-007-[0-9a-f]{8}", name) and len(name) <= 63
    assert (
        name
        == trial_job_name("video-recsys-hpo-0123456789-t1", 7)
        != trial_job_name("video-recsys-hpo-0123456789-t1", 8)
    )


def test_tuning_objective_metric_is_passed_and_ignored(job_dir: Path) -> None:
    request = training_request(job_dir, epochs="1")
    request["HyperParameters"]["_tuning_objective_metric"] = "test:rmse"
    assert run_training_job(request, Path, emit=lambda _: None)["TrainingJobStatus"] == "Completed"
