"""Operators that execute SageMaker request dicts, one per backend.

``local``: our operators run the request through the offline FM engine and return
the same XCom shape as the Amazon provider's operators (``{"Training": ...}``,
``{"Model": ..., "Transform": ...}``). ``sagemaker``: the provider's operators send
the same request to AWS. The factories below are the only place the backend
choice is made; the request dicts never change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from airflow.exceptions import AirflowException
from airflow.sdk import BaseOperator, ObjectStoragePath

from video_recommender.sagemaker_requests import name_for_try
from video_recommender.settings import Settings


def xcom_safe(value: Any) -> Any:
    """What the provider pushes: the describe response through ``json.dumps(default=repr)``."""
    return json.loads(json.dumps(value, default=repr))


class _LocalSageMakerOperator(BaseOperator):
    template_fields: Sequence[str] = ("config",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"config": "json"}
    ui_color = "#a0e0c0"

    def __init__(self, *, config: dict, storage_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.storage_conn_id = storage_conn_id

    def resolve(self, uri: str) -> ObjectStoragePath:
        return ObjectStoragePath(uri, conn_id=self.storage_conn_id)

    def request(self, context: Any) -> dict:
        """The request with this try's job names (as the SageMaker backend submits it)."""
        return name_for_try(self.config, context["ti"].try_number)


class LocalSageMakerTrainingOperator(_LocalSageMakerOperator):
    """Run a CreateTrainingJob request on the local FM engine; XCom ``{"Training": DescribeTrainingJob}``."""

    def execute(self, context: Any) -> dict:
        from video_recommender.engine.training import run_training_job  # numpy/numba: at run time only

        describe = run_training_job(self.request(context), self.resolve, emit=self.log.info)
        if describe["TrainingJobStatus"] != "Completed":
            raise AirflowException(
                f"Training job {describe['TrainingJobName']} failed: {describe.get('FailureReason')}"
            )
        return {"Training": xcom_safe(describe)}


class LocalSageMakerTransformOperator(_LocalSageMakerOperator):
    """Run ``{"Model": CreateModel, "Transform": CreateTransformJob}`` locally; XCom as the provider's."""

    def execute(self, context: Any) -> dict:
        from video_recommender.engine.transform import run_transform_job

        result = run_transform_job(self.request(context), self.resolve, emit=self.log.info)
        transform = result["Transform"]
        if transform["TransformJobStatus"] != "Completed":
            raise AirflowException(
                f"Transform job {transform['TransformJobName']} failed: {transform.get('FailureReason')}"
            )
        return xcom_safe(result)


class LocalSageMakerTuningOperator(_LocalSageMakerOperator):
    """Run a CreateHyperParameterTuningJob request locally; XCom ``{"Tuning": DescribeHyperParameterTuningJob}``."""

    def execute(self, context: Any) -> dict:
        from video_recommender.engine.tuning import run_tuning_job

        describe = run_tuning_job(self.request(context), self.resolve, emit=self.log.info)
        if describe["HyperParameterTuningJobStatus"] != "Completed":
            raise AirflowException(
                f"Tuning job {describe['HyperParameterTuningJobName']} failed: {describe.get('FailureReason')}"
            )
        return {"Tuning": xcom_safe(describe)}


def training_operator(settings: Settings, *, task_id: str, config: Any) -> BaseOperator:
    if settings.backend == "local":
        return LocalSageMakerTrainingOperator(task_id=task_id, config=config, storage_conn_id=settings.aws_conn_id)
    from video_recommender.sagemaker_operators import SageMakerTrainingJob, job_operator_kwargs

    return SageMakerTrainingJob(task_id=task_id, config=config, print_log=True, **job_operator_kwargs(settings))


def tuning_operator(settings: Settings, *, task_id: str, config: Any) -> BaseOperator:
    if settings.backend == "local":
        return LocalSageMakerTuningOperator(task_id=task_id, config=config, storage_conn_id=settings.aws_conn_id)
    from video_recommender.sagemaker_operators import SageMakerTuningJob, job_operator_kwargs

    return SageMakerTuningJob(task_id=task_id, config=config, **job_operator_kwargs(settings))


def transform_operator(settings: Settings, *, task_id: str, config: Any) -> BaseOperator:
    if settings.backend == "local":
        return LocalSageMakerTransformOperator(task_id=task_id, config=config, storage_conn_id=settings.aws_conn_id)
    from video_recommender.sagemaker_operators import SageMakerTransformJob, job_operator_kwargs

    return SageMakerTransformJob(task_id=task_id, config=config, **job_operator_kwargs(settings))


def processing_operator(settings: Settings, *, task_id: str, config: Any) -> BaseOperator:
    """preprocess / prepare as a SageMaker Processing job (``RECOMMENDER_DATA_STEPS=processing``)."""
    from video_recommender.sagemaker_operators import SageMakerProcessingJob, job_operator_kwargs

    return SageMakerProcessingJob(task_id=task_id, config=config, **job_operator_kwargs(settings))
