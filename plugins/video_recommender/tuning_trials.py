"""A tuning job's trials, for the run report: listed from SageMaker, kept as JSON, shaped for the charts.

The source is what SageMaker itself gives: the ``TrainingJobSummaries`` of
ListTrainingJobsForHyperParameterTuningJob (one per training job the tuning job
started, with its tuned hyper-parameters as strings, its status and its final
objective). The local engine writes the same summaries, which ``save_summaries``
keeps in the run folder as the local stand-in for that listing.

No Airflow here: the SageMaker client and the paths are handed in.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from video_recommender.storage import PathLike, write_atomically

# The timestamp members of HyperParameterTrainingJobSummary (botocore's sagemaker model);
# JSON holds them as ISO strings and load_summaries turns them back into datetimes.
TIMESTAMPS = ("CreationTime", "TrainingStartTime", "TrainingEndTime")
PAGE_SIZE = 100  # the API's maximum MaxResults
_RANGE_KINDS = (
    ("ContinuousParameterRanges", "continuous"),
    ("IntegerParameterRanges", "integer"),
    ("CategoricalParameterRanges", "categorical"),
)


def list_training_job_summaries(client: Any, tuning_job_name: str) -> list[dict]:
    """Every training job of ``tuning_job_name``, from a boto3 SageMaker client, all pages."""
    request: dict[str, Any] = {"HyperParameterTuningJobName": tuning_job_name, "MaxResults": PAGE_SIZE}
    summaries: list[dict] = []
    while True:
        page = client.list_training_jobs_for_hyper_parameter_tuning_job(**request)
        summaries.extend(page.get("TrainingJobSummaries", []))
        token = page.get("NextToken")
        if not token:
            return summaries
        request["NextToken"] = token


def save_summaries(path: PathLike, summaries: list[dict]) -> None:
    """Write ``summaries`` as JSON, datetimes as ISO 8601 strings."""

    def encode(value: object) -> str:
        if isinstance(value, dt.datetime):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    write_atomically(path, (json.dumps(summaries, default=encode, indent=1, sort_keys=True) + "\n").encode())


def load_summaries(path: PathLike) -> list[dict]:
    """The summaries ``save_summaries`` wrote, with their timestamps as datetimes again."""
    summaries = json.loads(path.read_bytes())
    for summary in summaries:
        for key in TIMESTAMPS:
            if isinstance(summary.get(key), str):
                summary[key] = dt.datetime.fromisoformat(summary[key])
    return summaries


def _parameters(tuning_config: dict) -> list[dict]:
    """Name, kind and scaling of every tuned hyper-parameter, in the config's order."""
    ranges = tuning_config.get("ParameterRanges", {})
    out = []
    for key, kind in _RANGE_KINDS:
        for spec in ranges.get(key, []):
            scaling = None if kind == "categorical" else spec.get("ScalingType", "Auto")
            # Chart.js's axis type: logarithmic only where the search itself was
            axis = "category" if kind == "categorical" else "logarithmic" if scaling == "Logarithmic" else "linear"
            parameter = {"name": spec["Name"], "kind": kind, "scaling": scaling, "axis": axis}
            if kind == "categorical":
                parameter["categories"] = [str(v) for v in spec.get("Values", [])]
            out.append(parameter)
    return out


def _tuned_value(text: str, kind: str) -> float | int | str | None:
    """A tuned value (SageMaker passes strings) as the chart's axis wants it."""
    if kind == "categorical":
        return text
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if kind == "integer" else number


def _created(summary: dict) -> dt.datetime:
    """The sort key: CreationTime, naive read as UTC (boto3 gives aware ones), missing last."""
    created = summary.get("CreationTime")
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created)
    if created is None:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    return created if created.tzinfo else created.replace(tzinfo=dt.UTC)


def trials_for_report(summaries: list[dict], tuning_config: dict) -> dict | None:
    """The trials as the report draws them, or None when there are none.

    Trials are numbered in the order their training jobs were created. ``value`` is the
    final objective when its ObjectiveStatus is Succeeded, else None (failed, or still
    pending); ``best_so_far`` is the best value among that trial and the earlier ones.
    """
    if not summaries:
        return None
    objective = tuning_config.get("HyperParameterTuningJobObjective", {})
    direction = objective.get("Type", "Minimize")
    better = min if direction == "Minimize" else max
    parameters = _parameters(tuning_config)
    kinds = {p["name"]: p["kind"] for p in parameters}
    for summary in summaries:  # a tuned name without a range (not expected): shown as categories
        for name in summary.get("TunedHyperParameters", {}):
            if name not in kinds:
                kinds[name] = "categorical"
                parameters.append({"name": name, "kind": "categorical", "scaling": None, "axis": "category"})
    for p in parameters:  # every value tried has its category, the config's order first
        if p["kind"] == "categorical":
            listed = p.get("categories", [])
            tried = {
                str(s["TunedHyperParameters"][p["name"]])
                for s in summaries
                if p["name"] in s.get("TunedHyperParameters", {})
            }
            p["categories"] = listed + sorted(tried - set(listed))
    trials = []
    best: float | None = None
    best_trial: int | None = None
    for number, summary in enumerate(sorted(summaries, key=lambda s: (_created(s), s["TrainingJobName"])), 1):
        value = _objective(summary)
        if value is not None and (best is None or better(value, best) != best):
            best, best_trial = value, number
        created = summary.get("CreationTime")
        tuned = summary.get("TunedHyperParameters", {})
        trials.append(
            {
                "number": number,
                "job": summary["TrainingJobName"],
                "status": summary.get("TrainingJobStatus"),
                "objective_status": summary.get("ObjectiveStatus"),
                "value": value,
                "best_so_far": best,
                "created": created.isoformat() if isinstance(created, dt.datetime) else created,
                "failure_reason": summary.get("FailureReason"),
                "tuned": {name: _tuned_value(text, kinds[name]) for name, text in tuned.items()},
            }
        )
    return {
        "metric": objective.get("MetricName", "objective"),
        "direction": direction,
        "best_trial": best_trial,
        "parameters": parameters,
        "trials": trials,
    }


def _objective(summary: dict) -> float | None:
    """The trial's final objective if the tuning job used it (ObjectiveStatus Succeeded), else None."""
    final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    if final.get("Value") is None or summary.get("ObjectiveStatus", "Succeeded") != "Succeeded":
        return None  # Pending (still running) or Failed (no objective: the job failed or emitted none)
    value = float(final["Value"])
    return value if math.isfinite(value) else None
