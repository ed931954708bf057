"""How long to wait for a SageMaker job: derived from the job's own time limits.

The Amazon provider (9.34.0) waits ``max_attempts`` polls (default 60) in deferrable
mode and ``max_ingestion_time`` seconds (default: forever) on a worker. 60 polls of 30 s
is 30 minutes: a longer job fails its task while it still runs, and the retry submits
a second job. The wait here lasts as long as the job may run, plus a margin for what
its limits do not count, and no longer, so a stuck wait still ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# MaxRuntimeInSeconds counts the job's own run; SageMaker also provisions instances,
# pulls the image, downloads the inputs and uploads the outputs outside it
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html).
START_STOP_MARGIN_SECONDS = 3600


@dataclass(frozen=True)
class WaitBudget:
    seconds: int  # the whole wait: max_ingestion_time, and the deferral's timeout
    max_attempts: int  # polls at the check interval: the trigger's waiter_max_attempts


def _runtime_limit(kind: str, request: dict, transform_limit: int) -> int:
    if kind in ("training", "processing"):
        condition = request.get("StoppingCondition", {})
        # With managed spot, MaxWaitTimeInSeconds (>= MaxRuntimeInSeconds) also covers
        # waiting for spot capacity and restarts.
        return int(condition.get("MaxWaitTimeInSeconds") or condition["MaxRuntimeInSeconds"])
    if kind == "tuning":
        limits = request["HyperParameterTuningJobConfig"]["ResourceLimits"]
        if limits.get("MaxRuntimeInSeconds"):
            return int(limits["MaxRuntimeInSeconds"])
        # No overall limit: at most ceil(jobs / parallel) rounds of one job's limit.
        rounds = math.ceil(int(limits["MaxNumberOfTrainingJobs"]) / int(limits.get("MaxParallelTrainingJobs", 1)))
        return rounds * _runtime_limit("training", request["TrainingJobDefinition"], transform_limit)
    if kind == "transform":
        return transform_limit  # CreateTransformJob takes no time limit: the setting is ours
    raise ValueError(f"unknown job kind {kind!r}")


def wait_budget(kind: str, request: dict, check_interval: float, transform_limit: int) -> WaitBudget:
    """The wait for one job of ``kind`` (training, tuning, transform, processing) and its request.

    ``request`` is the Create request (for transform, the ``{"Model", "Transform"}`` pair
    or the CreateTransformJob request); ``transform_limit`` is our cap on a transform job.
    """
    seconds = _runtime_limit(kind, request, transform_limit) + START_STOP_MARGIN_SECONDS
    return WaitBudget(seconds=seconds, max_attempts=math.ceil(seconds / check_interval) + 1)
