"""The sagemaker backend: the Amazon provider's operators, made to survive real jobs.

Imported only when ``RECOMMENDER_BACKEND=sagemaker`` (it loads boto3). The request
dicts are the ones the local backend runs, built when the task runs
(``operators.RequestAtRunTime``). What this module adds to the provider's
operators (9.34.0), each for a failure found in its source:

- **Names per try** (``name_for_try``, both backends): a retry never collides with
  the failed try's job (the tuning operator has no duplicate-name handling).
- **Waits as long as the job may run** (``waits.wait_budget``): the provider's
  deferrable wait gives up after 60 polls, the tuning operator's trigger after 480.
- **One region everywhere**: the provider builds ``SageMakerTrigger`` without a
  region, and ``SageMakerHook``'s S3 and CloudWatch Logs hooks without one, so they
  query the connection's region rather than ``RECOMMENDER_REGION``.
- **No job left running**: ``on_kill`` (worker waits) and the trigger's ``on_kill``
  (deferred waits) stop the job when a user kills the task, a worker wait that fails
  or times out stops it, and a retry first stops the previous try's job if it still
  runs (a timed-out deferral, a lost worker).
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerBaseOperator,
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
    SageMakerTuningOperator,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from botocore.exceptions import ClientError

from video_recommender.extra_links import SAGEMAKER_JOB_LINKS
from video_recommender.operators import RequestAtRunTime
from video_recommender.sagemaker_requests import is_model_of_try, name_for_try
from video_recommender.waits import WaitBudget, wait_budget

# Per job kind: (the job's part of the config, its name key, Describe/Stop operation stem, status key).
_JOBS: dict[str, tuple[str | None, str, str, str]] = {
    "training": (None, "TrainingJobName", "training_job", "TrainingJobStatus"),
    "tuning": (None, "HyperParameterTuningJobName", "hyper_parameter_tuning_job", "HyperParameterTuningJobStatus"),
    "transform": ("Transform", "TransformJobName", "transform_job", "TransformJobStatus"),
    "processing": (None, "ProcessingJobName", "processing_job", "ProcessingJobStatus"),
}
RUNNING = ("InProgress",)


def job_name_of(kind: str, config: dict) -> str:
    part, key, _, _ = _JOBS[kind]
    return (config[part] if part else config)[key]


def stop_job_if_running(client: Any, kind: str, name: str, log: Any) -> bool:
    """Stop job ``name`` if it is still InProgress; ``True`` when a stop was sent.

    Never raises for the job itself: it runs while a task is already failing or before a
    retry submits, and must neither hide that error nor fail the retry.
    """
    _, key, stem, status_key = _JOBS[kind]
    try:
        status = getattr(client, f"describe_{stem}")(**{key: name})[status_key]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("ValidationException", "ResourceNotFound"):  # never created: the try failed before
            log.info("no %s job %s to stop", kind, name)
        else:  # AccessDenied, throttling: say so, the job may still run
            log.warning("cannot tell whether %s job %s still runs (%s): not stopped", kind, name, code)
        return False
    if status not in RUNNING:
        return False
    log.warning("stopping %s job %s (status %s)", kind, name, status)
    try:
        getattr(client, f"stop_{stem}")(**{key: name})
    except ClientError as exc:  # e.g. it ended between the two calls
        log.warning("could not stop %s job %s: %s", kind, name, exc)
        return False
    return True


class RegionalSageMakerHook(SageMakerHook):
    """``SageMakerHook`` whose S3 and CloudWatch Logs hooks use its region too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.s3_hook = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        self.logs_hook = AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)


class SageMakerJobTrigger(SageMakerTrigger):
    """``SageMakerTrigger`` that stops its job when a user kills the deferred task.

    Importable by the triggerer from plugins.zip (MWAA puts the plugins folder on every
    component's ``sys.path``). ``on_kill`` runs when a user marks the deferred task failed
    or succeeded or clears it, not on a triggerer restart or a timeout (Airflow's
    ``BaseTrigger.on_kill``): marking it succeeded also stops the job.
    """

    async def on_kill(self) -> None:
        kind = self.job_type.lower()
        _, key, stem, _ = _JOBS[kind]
        async with await self.hook().get_async_conn() as client:
            await getattr(client, f"stop_{stem}")(**{key: self.job_name})


class _SageMakerJob:
    """What every job operator of this backend adds to the provider's (see the module docstring)."""

    config: dict
    sagemaker_job_kind: ClassVar[str]  # which job the links point to (console_links.JOB_KINDS)
    operator_extra_links = SAGEMAKER_JOB_LINKS  # the job's console page and logs (extra_links)
    aws_hook_class = RegionalSageMakerHook
    max_runtime_seconds = 0  # our cap, for jobs whose request has none (transform)

    def wait(self) -> WaitBudget:
        request = self.config.get("Transform", self.config)
        return wait_budget(self.sagemaker_job_kind, request, self.check_interval, self.max_runtime_seconds)

    def execute(self, context: Any) -> Any:
        try_number = context["ti"].try_number
        if try_number > 1:  # a job of the previous try may still run (a lost worker, a timed-out wait)
            previous = job_name_of(self.sagemaker_job_kind, name_for_try(self.config, try_number - 1))
            stop_job_if_running(self.hook.conn, self.sagemaker_job_kind, previous, self.log)
        self.config = name_for_try(self.config, try_number)
        budget = self.wait()
        self.max_attempts = budget.max_attempts  # the provider's deferrable wait
        self.max_ingestion_time = budget.seconds  # its worker wait, and the deferral's timeout
        try:
            return super().execute(context)  # type: ignore[misc]
        except Exception:  # not TaskDeferred: a BaseException, the deferral goes on
            # The worker wait gave up (max_ingestion_time) or failed while the job may
            # still run: a failed task must not leave it running.
            stop_job_if_running(
                self.hook.conn, self.sagemaker_job_kind, job_name_of(self.sagemaker_job_kind, self.config), self.log
            )
            raise

    def resume_execution(self, next_method: str, next_kwargs: dict | None, context: Any) -> Any:
        """Back from the triggerer: a failed or timed-out deferral stops the job, as a failed worker wait does.

        Airflow resumes here, not in ``execute``, and calls no ``on_kill`` on a deferral
        timeout (``TaskDeferralTimeout``); a transform job, which has no time limit of its
        own, would otherwise run on. The resumed operator is a fresh copy whose config was
        rendered again with the base names: this try's names are set back first, so the stop
        and the task's extra links (computed when it ends) name the job it submitted.
        """
        try_number = context["ti"].try_number
        if not job_name_of(self.sagemaker_job_kind, self.config).endswith(f"-t{try_number}"):
            self.config = name_for_try(self.config, try_number)
        try:
            return super().resume_execution(next_method, next_kwargs, context)  # type: ignore[misc]
        except Exception:
            name = job_name_of(self.sagemaker_job_kind, self.config)
            stop_job_if_running(self.hook.conn, self.sagemaker_job_kind, name, self.log)
            raise

    def defer(self, *, trigger: Any, method_name: str, kwargs: dict | None = None, timeout: Any = None) -> Any:
        """Defer on ``SageMakerJobTrigger`` with this operator's region and wait budget."""
        import datetime

        budget = self.wait()
        ours = SageMakerJobTrigger(
            job_name=trigger.job_name,
            job_type=trigger.job_type,
            waiter_delay=trigger.waiter_delay,
            waiter_max_attempts=budget.max_attempts,
            aws_conn_id=trigger.aws_conn_id,
            region_name=self.region_name,
        )
        return super().defer(  # type: ignore[misc]
            trigger=ours, method_name=method_name, kwargs=kwargs, timeout=datetime.timedelta(seconds=budget.seconds)
        )

    def on_kill(self) -> None:
        """The task was killed while waiting on a worker: stop the job it started."""
        stop_job_if_running(
            self.hook.conn, self.sagemaker_job_kind, job_name_of(self.sagemaker_job_kind, self.config), self.log
        )


class SageMakerTrainingJob(RequestAtRunTime, _SageMakerJob, SageMakerTrainingOperator):
    """``SageMakerTrainingOperator``; XCom ``{"Training": DescribeTrainingJob}``."""

    sagemaker_job_kind = "training"


class SageMakerTuningJob(RequestAtRunTime, _SageMakerJob, SageMakerTuningOperator):
    """``SageMakerTuningOperator``; XCom ``{"Tuning": DescribeHyperParameterTuningJob}``."""

    sagemaker_job_kind = "tuning"


class SageMakerTransformJob(RequestAtRunTime, _SageMakerJob, SageMakerTransformOperator):
    """``SageMakerTransformOperator`` with ``{"Model": ..., "Transform": ...}``; XCom as the provider's."""

    sagemaker_job_kind = "transform"

    def __init__(self, *, max_runtime_seconds: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_runtime_seconds = max_runtime_seconds  # CreateTransformJob takes no limit


class SageMakerProcessingJob(RequestAtRunTime, _SageMakerJob, SageMakerProcessingOperator):
    """``SageMakerProcessingOperator`` for preprocess / prepare; XCom ``{"Processing": DescribeProcessingJob}``."""

    sagemaker_job_kind = "processing"


class SageMakerModelCleanup(RequestAtRunTime, SageMakerBaseOperator):
    """Delete every try's Model of the run's transform (``config``: ``{"Model": {"ModelName": <base name>}}``).

    Found with ListModels rather than from the retry count: a cleared task keeps counting
    tries past ``retries + 1``.
    """

    aws_hook_class = RegionalSageMakerHook

    def execute(self, context: Any) -> list[str]:
        base = self.config["Model"]["ModelName"]
        client = self.hook.conn
        names = [
            m["ModelName"]
            for page in client.get_paginator("list_models").paginate(NameContains=base)
            for m in page["Models"]
            if is_model_of_try(m["ModelName"], base)
        ]
        for name in names:
            client.delete_model(ModelName=name)
        self.log.info("deleted %d model(s) of %s: %s", len(names), base, names)
        return names
