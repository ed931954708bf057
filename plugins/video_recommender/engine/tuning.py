"""CreateHyperParameterTuningJob semantics for the local FM engine, on Optuna.

Takes the request ``SageMakerTuningOperator`` sends (``HyperParameterTuningJobConfig``
+ ``TrainingJobDefinition``), runs each trial as a local training job with its own
name and artifacts (``<S3OutputPath>/<tuning job>-<NNN>-<hash>/output/model.tar.gz``),
and returns a DescribeHyperParameterTuningJob-shaped dict with the real best job.

Strategies map to Optuna samplers: Bayesian -> TPE, Random -> random search,
Grid -> grid over the categorical ranges, Hyperband -> TPE with Optuna's Hyperband
pruner over epochs. ``TrainingJobEarlyStoppingType=Auto`` stops trials whose
per-epoch objective falls below the median of earlier trials (SageMaker's rule).
``MaxParallelTrainingJobs`` trials run at once, up to the machine's cores; the
compiled kernels release the GIL and each trial gets its share of the cores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from video_recommender.engine.hyperparameters import SPECS
from video_recommender.engine.training import (
    CHANNELS,
    JobFailed,
    local_arn,
    read_channel,
    run_training_job,
    test_metrics,
)
from video_recommender.storage import Resolver

# Objective metric -> (predictor_type, direction, key in test_metrics)
OBJECTIVES = {
    "test:rmse": ("regressor", "Minimize", "rmse"),
    "test:binary_classification_accuracy": ("binary_classifier", "Maximize", "binary_classification_accuracy"),
    "test:binary_classification_cross_entropy": (
        "binary_classifier",
        "Minimize",
        "binary_classification_cross_entropy",
    ),
    "test:binary_f_beta": ("binary_classifier", "Maximize", "binary_f_1.000"),
}
TUNABLE = sorted(
    name
    for name in SPECS
    if name in ("epochs", "mini_batch_size")
    or name.endswith(("_lr", "_wd", "_init_scale", "_init_sigma", "_init_value"))
)
STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
MAX_TUNING_JOB_NAME = 32


def trial_job_name(tuning_job: str, index: int) -> str:
    """SageMaker's pattern for a tuning job's training jobs: ``<tuning job>-<NNN>-<8 hex>``."""
    digest = hashlib.sha256(f"{tuning_job}/{index}".encode()).hexdigest()[:8]
    return f"{tuning_job}-{index:03d}-{digest}"


def _fail(message: str) -> JobFailed:
    return JobFailed(f"ValidationException: {message}")


def _ranges(config: dict) -> list[tuple[str, str, dict]]:
    """(kind, name, spec) for every range, validated against FM's tunable hyper-parameters."""
    ranges = config.get("ParameterRanges", {})
    out = []
    for key, kind in (
        ("ContinuousParameterRanges", "continuous"),
        ("IntegerParameterRanges", "integer"),
        ("CategoricalParameterRanges", "categorical"),
    ):
        for spec in ranges.get(key, []):
            name = spec.get("Name", "")
            if name not in TUNABLE:
                raise _fail(
                    f"hyperparameter '{name}' is not tunable for factorization-machines; tunable: {', '.join(TUNABLE)}"
                )
            if kind == "categorical":
                if not spec.get("Values"):
                    raise _fail(f"categorical range '{name}' has no Values")
            else:
                try:
                    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
                except (KeyError, ValueError):
                    raise _fail(f"range '{name}' needs numeric MinValue and MaxValue") from None
                if low > high:
                    raise _fail(f"range '{name}': MinValue {low:g} is above MaxValue {high:g}")
                scaling = spec.get("ScalingType", "Auto")
                if scaling not in ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"):
                    raise _fail(f"range '{name}': unknown ScalingType {scaling!r}")
                if scaling == "Logarithmic" and low <= 0:
                    raise _fail(f"range '{name}': Logarithmic scaling needs MinValue > 0")
                if scaling == "ReverseLogarithmic" and not (0 <= low and high < 1):
                    raise _fail(f"range '{name}': ReverseLogarithmic scaling needs 0 <= MinValue and MaxValue < 1")
            out.append((kind, name, spec))
    if not out:
        raise _fail("ParameterRanges is empty")
    return out


def _suggest(trial: Any, kind: str, name: str, spec: dict) -> str:
    """Draw one value as SageMaker passes it: a string."""
    if kind == "categorical":
        return str(trial.suggest_categorical(name, list(spec["Values"])))
    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
    scaling = spec.get("ScalingType", "Auto")
    if scaling == "Auto":  # our reading of "Auto": logarithmic when the range spans 2+ decades
        scaling = "Logarithmic" if low > 0 and high / low >= 100 else "Linear"
    if kind == "integer":
        return str(trial.suggest_int(name, int(low), int(high), log=scaling == "Logarithmic"))
    if scaling == "ReverseLogarithmic":
        # values near 1 matter most: search 1 - x on a log scale
        gap = trial.suggest_float(f"{name}__reverse_log_gap", 1 - high, 1 - low, log=True)
        return repr(1 - gap)
    return repr(trial.suggest_float(name, low, high, log=scaling == "Logarithmic"))


def run_tuning_job(
    request: dict,
    resolve: Resolver,
    emit: Callable[[str], None] = print,
    cores: int | None = None,
    summaries: list | None = None,
) -> dict:
    """Run a tuning job locally; return the DescribeHyperParameterTuningJob response.

    ``summaries``, when given, receives one ``TrainingJobSummaries`` entry of
    ListTrainingJobsForHyperParameterTuningJob per training job as it ends (failed and
    stopped ones too), in the order they end; the Describe response has no such list.
    """
    import numba
    import optuna

    name = request.get("HyperParameterTuningJobName", "")
    config = request.get("HyperParameterTuningJobConfig", {})
    definition = request.get("TrainingJobDefinition", {})
    created = dt.datetime.now(dt.UTC)
    describe: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": local_arn("hyper-parameter-tuning-job", name),
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": definition,
        "CreationTime": created,
    }
    counters: Counter = Counter()
    objective_counters: Counter = Counter()
    results: list[dict] = []
    lock = threading.Lock()
    try:
        if not name or len(name) > MAX_TUNING_JOB_NAME:
            raise _fail(f"HyperParameterTuningJobName must have 1 to {MAX_TUNING_JOB_NAME} characters, got {name!r}")
        strategy = config.get("Strategy", "Bayesian")
        if strategy not in STRATEGIES:
            raise _fail(f"Strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
        objective = config.get("HyperParameterTuningJobObjective", {})
        metric = objective.get("MetricName")
        if metric not in OBJECTIVES:
            raise _fail(f"objective metric {metric!r} is not an FM objective; use one of {', '.join(OBJECTIVES)}")
        predictor, direction, metric_key = OBJECTIVES[metric]
        if objective.get("Type", direction) != direction:
            raise _fail(f"objective {metric} must be {direction}d, got Type {objective.get('Type')!r}")
        static = {k: str(v) for k, v in definition.get("StaticHyperParameters", {}).items()}
        if static.get("predictor_type") != predictor:
            raise _fail(f"objective {metric} needs predictor_type={predictor}, got {static.get('predictor_type')!r}")
        ranges = _ranges(config)
        clash = sorted({n for _, n, _ in ranges} & set(static))
        if clash:
            raise _fail(f"hyperparameter(s) {', '.join(clash)} are both static and tuned")
        if strategy == "Grid" and any(kind != "categorical" for kind, _, _ in ranges):
            raise _fail("Grid search takes categorical parameter ranges only")
        limits = config.get("ResourceLimits", {})
        grid_size = math.prod(len(spec["Values"]) for _, _, spec in ranges) if strategy == "Grid" else None
        max_jobs = int(limits.get("MaxNumberOfTrainingJobs", grid_size or 0))
        if max_jobs < 1:
            raise _fail("ResourceLimits.MaxNumberOfTrainingJobs must be at least 1")
        if grid_size:
            max_jobs = min(max_jobs, grid_size)
        parallel = max(1, min(int(limits.get("MaxParallelTrainingJobs", 1)), cores or os.cpu_count() or 1, max_jobs))
        channels = {c.get("ChannelName"): c for c in definition.get("InputDataConfig", [])}
        if "test" not in channels:
            raise _fail(f"objective {metric} is computed on the 'test' channel; the TrainingJobDefinition has none")
        if set(channels) - set(CHANNELS):
            raise _fail(f"FM takes channels 'train' and 'test'; got {sorted(channels)}")
        data = {c: read_channel(channels[c], resolve) for c in channels}  # read once for every trial
        if parallel > 1 and _threading_layer() == "workqueue":
            emit(f"[{name}] numba's workqueue threading layer cannot run jobs side by side: running one at a time")
            parallel = 1

        seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
        if strategy == "Random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        elif strategy == "Grid":
            sampler = optuna.samplers.GridSampler({n: list(spec["Values"]) for _, n, spec in ranges}, seed=seed)
        else:
            # A third of the budget (2 to 10 jobs) explores at random before TPE models the results.
            startup = max(2, min(10, max_jobs // 3))
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup)
        if strategy == "Hyperband":
            hyperband = config.get("StrategyConfig", {}).get("HyperbandStrategyConfig", {})
            pruner: optuna.pruners.BasePruner = optuna.pruners.HyperbandPruner(
                min_resource=int(hyperband.get("MinResource", 1)), max_resource=hyperband.get("MaxResource", "auto")
            )
        elif config.get("TrainingJobEarlyStoppingType", "Off") == "Auto":
            pruner = optuna.pruners.MedianPruner(n_startup_trials=max(2, parallel), n_warmup_steps=1)
        else:
            pruner = optuna.pruners.NopPruner()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="minimize" if direction == "Minimize" else "maximize", sampler=sampler, pruner=pruner
        )
        emit(
            f"[{name}] {strategy} search over {', '.join(n for _, n, _ in ranges)}: {max_jobs} training jobs, "
            f"{parallel} at a time, objective {metric} ({direction})"
        )

        def objective_fn(trial: optuna.Trial) -> float:
            numba.set_num_threads(max(1, (cores or numba.config.NUMBA_NUM_THREADS) // parallel))
            tuned = {n: _suggest(trial, kind, n, spec) for kind, n, spec in ranges}
            job = trial_job_name(name, trial.number + 1)
            job_request = {
                **{k: v for k, v in definition.items() if k not in ("StaticHyperParameters", "DefinitionName")},
                "TrainingJobName": job,
                "HyperParameters": {**static, **tuned, "_tuning_objective_metric": metric},
            }

            def report(epoch: int, model: Any) -> bool:
                if isinstance(pruner, optuna.pruners.NopPruner):
                    return False
                trial.report(test_metrics(model, *data["test"])[metric_key], epoch)
                return trial.should_prune()

            lines: list[str] = []
            result = run_training_job(job_request, resolve, lines.append, data=data, on_epoch=report)
            status = result["TrainingJobStatus"]
            value = next((m["Value"] for m in result.get("FinalMetricDataList", []) if m["MetricName"] == metric), None)
            with lock:
                counters[status] += 1
                objective_counters["Succeeded" if value is not None else "Failed"] += 1
                results.append({"job": result, "tuned": tuned, "value": value})
                if summaries is not None:
                    summaries.append(_training_job_summary(name, result, tuned, value, metric, direction))
            shown = "-" if value is None else f"{value:.5f}"
            emit(
                f"[{name}] {job} {status}: {metric}={shown} {tuned}"
                + (f" ({result.get('FailureReason')})" if status == "Failed" else "")
            )
            if value is None:
                raise optuna.TrialPruned() if status == "Stopped" else RuntimeError(result.get("FailureReason"))
            return value

        study.optimize(objective_fn, n_trials=max_jobs, n_jobs=parallel, catch=(RuntimeError,))
        scored = [r for r in results if r["value"] is not None]
        if not scored:
            raise JobFailed(f"AlgorithmError: all {len(results)} training jobs failed; first reason: "
                            f"{results[0]['job'].get('FailureReason') if results else 'none ran'}")  # fmt: skip
        best = (min if direction == "Minimize" else max)(scored, key=lambda r: r["value"])
    except JobFailed as exc:
        emit(f"[{name}] failed: {exc}")
        end = dt.datetime.now(dt.UTC)
        describe.update(HyperParameterTuningJobStatus="Failed", FailureReason=str(exc), HyperParameterTuningEndTime=end,
                        LastModifiedTime=end, TrainingJobStatusCounters=_status_counters(counters),
                        ObjectiveStatusCounters=_objective_counters(objective_counters))  # fmt: skip
        return describe
    end = dt.datetime.now(dt.UTC)
    job = best["job"]
    describe.update(
        HyperParameterTuningJobStatus="Completed",
        HyperParameterTuningEndTime=end,
        LastModifiedTime=end,
        TrainingJobStatusCounters=_status_counters(counters),
        ObjectiveStatusCounters=_objective_counters(objective_counters),
        BestTrainingJob={
            "TrainingJobName": job["TrainingJobName"],
            "TrainingJobArn": job["TrainingJobArn"],
            "CreationTime": job["CreationTime"],
            "TrainingStartTime": job["TrainingStartTime"],
            "TrainingEndTime": job["TrainingEndTime"],
            "TrainingJobStatus": job["TrainingJobStatus"],
            "TunedHyperParameters": best["tuned"],
            "FinalHyperParameterTuningJobObjectiveMetric": {
                "Type": direction,
                "MetricName": metric,
                "Value": best["value"],
            },
            "ObjectiveStatus": "Succeeded",
        },
    )
    emit(f"[{name}] best training job {job['TrainingJobName']}: {metric}={best['value']:.5f} {best['tuned']}")
    return describe


def _training_job_summary(
    tuning_job: str, job: dict, tuned: dict[str, str], value: float | None, metric: str, direction: str
) -> dict:
    """One HyperParameterTrainingJobSummary, as ListTrainingJobsForHyperParameterTuningJob lists it.

    ObjectiveStatus as AWS documents it: Succeeded when the job's final objective was
    evaluated and used by the tuning job (a job stopped early keeps the metric it
    emitted), Failed when there is none. Pending (job still running) cannot occur here:
    a summary is written when its job has ended.
    """
    summary: dict[str, Any] = {
        "TrainingJobName": job["TrainingJobName"],
        "TrainingJobArn": job["TrainingJobArn"],
        "TuningJobName": tuning_job,
        "CreationTime": job["CreationTime"],
        "TrainingStartTime": job["TrainingStartTime"],
        "TrainingEndTime": job["TrainingEndTime"],
        "TrainingJobStatus": job["TrainingJobStatus"],
        "TunedHyperParameters": dict(tuned),
        "ObjectiveStatus": "Succeeded" if value is not None else "Failed",
    }
    if job.get("FailureReason"):
        summary["FailureReason"] = job["FailureReason"]
    if value is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": direction,
            "MetricName": metric,
            "Value": value,
        }
    return summary


def _threading_layer() -> str:
    from video_recommender.engine import fm

    fm.predict(*(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)),
               np.zeros(1, np.float32), np.zeros(1, np.float32), np.zeros((1, 1), np.float32), False)  # fmt: skip
    import numba

    return numba.threading_layer()


def _status_counters(counts: Counter) -> dict[str, int]:
    return {
        "Completed": counts["Completed"],
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": counts["Failed"],
        "Stopped": counts["Stopped"],
    }


def _objective_counters(counts: Counter) -> dict[str, int]:
    return {"Succeeded": counts["Succeeded"], "Pending": 0, "Failed": counts["Failed"]}
