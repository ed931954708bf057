"""The one seam between backends: job kind -> (local executor, provider operator).

``local``: our operators run each SageMaker request through the offline engine and
return the provider's XCom shape (``{"Training": ...}``, ``{"Processing": ...}``,
``{"Model": ..., "Transform": ...}``). ``sagemaker``: the provider's operators, as
subclassed in ``sagemaker_operators``, send the same request to AWS. ``job_operator``
is the only place the backend is chosen and the shared settings are applied; the
request dicts never change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from airflow.exceptions import AirflowException
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import BaseOperator, ObjectStoragePath, literal

from video_recommender.extra_links import RunReportLink
from video_recommender.layout import Run
from video_recommender.sagemaker_requests import is_model_of_try, name_for_try
from video_recommender.settings import Settings
from video_recommender.tasks import run_of, storage_path

# Builds a job task's request from its context when it runs (``tasks.*_job_request``).
RequestBuilder = Callable[[Any, Settings], dict]


def xcom_safe(value: Any) -> Any:
    """What the provider pushes: the describe response through ``json.dumps(default=repr)``."""
    return json.loads(json.dumps(value, default=repr))


class RequestAtRunTime(BaseOperator):
    """Mixed into both backends' job operators: ``config`` is built when the task runs.

    A request depends on the run id (its names and paths) and on what ran before (the
    prepared data, the branch's model), so it cannot be written into the DAG file; a
    separate task that returns it would put a ``*_request`` node and an XCom edge before
    every job. Built while the task's templates are rendered, the request is what the
    UI shows as the task's rendered ``config`` (with the base names: each try's suffix
    is added when it is submitted), and a resumed (deferred) task rebuilds the same
    one. Without a builder, ``config`` is used as given.
    """

    config: Any

    # A BaseOperator so that Airflow's metaclass wraps this __init__ as it does every operator's.
    def __init__(self, *, request: RequestBuilder | None = None, settings: Settings | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.request_builder = request
        self.settings = settings

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        if self.request_builder is not None:
            # literal: the request is data, not a template. It carries user input (the
            # input_uri param, an asset's URI), and "{{ conn... }}" in it must stay text.
            self.config = literal(self.request_builder(context, self.settings))
        super().render_template_fields(context, jinja_env)


class _LocalJob(RequestAtRunTime):
    template_fields: Sequence[str] = ("config",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"config": "json"}
    ui_color = "#a0e0c0"

    def __init__(self, *, config: dict, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings=settings, **kwargs)
        self.config = config

    def resolve(self, uri: str) -> ObjectStoragePath:
        return storage_path(uri, self.settings)

    def run(self, context: Any) -> Run:
        return run_of(self.settings, context["run_id"])

    def request(self, context: Any) -> dict:
        """The request with this try's job names (as the SageMaker backend submits it)."""
        return name_for_try(self.config, context["ti"].try_number)


def _completed(describe: dict, kind: str) -> dict:
    if describe[f"{kind}Status"] != "Completed":
        raise AirflowException(f"{kind} {describe[f'{kind}Name']} failed: {describe.get('FailureReason')}")
    return xcom_safe(describe)


class LocalTrainingJob(_LocalJob):
    """Run a CreateTrainingJob request on the local FM engine; XCom ``{"Training": DescribeTrainingJob}``."""

    def execute(self, context: Any) -> dict:
        from video_recommender.engine.training import run_training_job  # numpy/numba: at run time only
        from video_recommender.storage import write_atomically

        request, lines = self.request(context), []

        def emit(line: str) -> None:
            self.log.info(line)
            lines.append(line)

        describe = run_training_job(request, self.resolve, emit=emit)
        # Kept as CloudWatch keeps a real job's log (group /aws/sagemaker/TrainingJobs, a
        # stream per host), so the report reads the learning curve the same way on both backends.
        log_file = self.run(context).local_sagemaker.training_log(request["TrainingJobName"])
        write_atomically(log_file, ("\n".join(lines) + "\n").encode())
        return {"Training": _completed(describe, "TrainingJob")}


class LocalTuningJob(_LocalJob):
    """Run a CreateHyperParameterTuningJob request locally; XCom ``{"Tuning": DescribeHyperParameterTuningJob}``."""

    def execute(self, context: Any) -> dict:
        from video_recommender.engine.tuning import run_tuning_job
        from video_recommender.tuning_trials import save_summaries

        request, summaries = self.request(context), []
        describe = run_tuning_job(request, self.resolve, emit=self.log.info, summaries=summaries)
        # Kept as SageMaker lists them (ListTrainingJobsForHyperParameterTuningJob), failed or
        # not, so the report draws the trials the same way on both backends.
        trials = self.run(context).local_sagemaker.tuning_trials(request["HyperParameterTuningJobName"])
        save_summaries(trials, summaries)
        return {"Tuning": _completed(describe, "HyperParameterTuningJob")}


class LocalTransformJob(_LocalJob):
    """Run ``{"Model": CreateModel, "Transform": CreateTransformJob}`` locally; XCom as the provider's."""

    def execute(self, context: Any) -> dict:
        from video_recommender.engine.transform import run_transform_job

        request = self.request(context)
        result = run_transform_job(
            request, self.resolve, emit=self.log.info, model_registry=self.run(context).local_sagemaker.models
        )
        _completed(result["Transform"], "TransformJob")
        return xcom_safe(result)


class LocalProcessingJob(_LocalJob):
    """Run a CreateProcessingJob request in-process (``engine.processing``); XCom ``{"Processing": ...}``."""

    def execute(self, context: Any) -> dict:
        from video_recommender.engine.processing import run_processing_job

        describe = run_processing_job(self.request(context), self.resolve, emit=self.log.info)
        return {"Processing": _completed(describe, "ProcessingJob")}


class LocalModelCleanup(_LocalJob):
    """Delete every try's Model of the run's transform (``config``: ``{"Model": {"ModelName": <base name>}}``)."""

    def execute(self, context: Any) -> list[str]:
        from video_recommender.engine.transform import delete_model, list_models

        registry = self.run(context).local_sagemaker.models
        base = self.config["Model"]["ModelName"]
        deleted = [
            name for name in list_models(registry) if is_model_of_try(name, base) and delete_model(registry, name)
        ]
        self.log.info("deleted %d model(s) of %s: %s", len(deleted), base, deleted)
        return deleted


class EvaluateOperator(PythonOperator):
    """A PythonOperator whose task carries the run's "Report" link (the plugin's report view)."""

    operator_extra_links = (RunReportLink(),)


@dataclass(frozen=True)
class JobKind:
    local: type[BaseOperator]
    sagemaker: str  # class in sagemaker_operators, imported only for that backend (boto3)
    sagemaker_kwargs: dict[str, Any] = field(default_factory=dict)


JOB_KINDS: dict[str, JobKind] = {
    "training": JobKind(LocalTrainingJob, "SageMakerTrainingJob", {"print_log": True}),
    "tuning": JobKind(LocalTuningJob, "SageMakerTuningJob"),
    "transform": JobKind(LocalTransformJob, "SageMakerTransformJob"),
    "processing": JobKind(LocalProcessingJob, "SageMakerProcessingJob"),
    "model_cleanup": JobKind(LocalModelCleanup, "SageMakerModelCleanup"),
}


def job_operator(
    kind: str, settings: Settings, *, task_id: str, request: RequestBuilder | None = None, **kwargs: Any
) -> BaseOperator:
    """The operator that runs a ``kind`` request on the settings' backend, with the shared settings.

    ``request`` builds the request from the task's context when it runs (or pass ``config``).

    Both backends: retries, the retry delay and names per try (each operator applies
    ``name_for_try``). SageMaker only: the connection, region, polling interval,
    deferrable waits and the transform's time cap; the local engine runs the job in
    the task itself, so it has nothing to poll.
    """
    shared = {
        "task_id": task_id,
        "request": request,
        "settings": settings,
        "config": kwargs.pop("config", {}),
        "retries": settings.job_retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        **kwargs,
    }
    job = JOB_KINDS[kind]
    if settings.backend == "local":
        return job.local(**shared)
    from video_recommender import sagemaker_operators

    waits: dict[str, Any] = {}
    if kind != "model_cleanup":
        waits = {
            "wait_for_completion": True,
            "check_interval": settings.check_interval,
            "deferrable": settings.deferrable,  # MWAA runs a triggerer: polling then costs no worker slot
        }
    if kind == "transform":
        waits["max_runtime_seconds"] = settings.transform_max_runtime_seconds  # CreateTransformJob has no limit
    return getattr(sagemaker_operators, job.sagemaker)(
        aws_conn_id=settings.aws_conn_id or "aws_default",
        region_name=settings.region,
        **waits,
        **job.sagemaker_kwargs,
        **shared,
    )
