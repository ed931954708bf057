"""The sagemaker backend: the Amazon provider's operators, submitting each try under its own names.

Imported only when ``RECOMMENDER_BACKEND=sagemaker`` (it loads boto3). The request
dicts are the ones the local backend runs; the only addition is ``name_for_try``,
which both backends apply, so a retry never collides with the failed try's job
(the tuning operator has no duplicate-name handling of its own).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
    SageMakerTuningOperator,
)

from video_recommender.extra_links import SAGEMAKER_JOB_LINKS
from video_recommender.sagemaker_requests import name_for_try
from video_recommender.settings import Settings


def job_operator_kwargs(settings: Settings) -> dict[str, Any]:
    """What every SageMaker job operator takes from the settings."""
    return {
        "aws_conn_id": settings.aws_conn_id or "aws_default",
        "region_name": settings.region,
        "wait_for_completion": True,
        "check_interval": settings.check_interval,
        "deferrable": settings.deferrable,  # MWAA runs a triggerer: polling then costs no worker slot
        "retries": settings.job_retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
    }


class _TryNamed:
    config: dict
    sagemaker_job_kind: str  # which job the links point to (console_links.JOB_KINDS)
    operator_extra_links = SAGEMAKER_JOB_LINKS  # the job's console page and logs (extra_links)

    def execute(self, context: Any) -> Any:
        self.config = name_for_try(self.config, context["ti"].try_number)
        return super().execute(context)  # type: ignore[misc]


class SageMakerTrainingJob(_TryNamed, SageMakerTrainingOperator):
    """``SageMakerTrainingOperator``; XCom ``{"Training": DescribeTrainingJob}``."""

    sagemaker_job_kind = "training"


class SageMakerTuningJob(_TryNamed, SageMakerTuningOperator):
    """``SageMakerTuningOperator``; XCom ``{"Tuning": DescribeHyperParameterTuningJob}``."""

    sagemaker_job_kind = "tuning"


class SageMakerTransformJob(_TryNamed, SageMakerTransformOperator):
    """``SageMakerTransformOperator`` with ``{"Model": ..., "Transform": ...}``; XCom as the provider's."""

    sagemaker_job_kind = "transform"


class SageMakerProcessingJob(_TryNamed, SageMakerProcessingOperator):
    """``SageMakerProcessingOperator`` for preprocess / prepare; XCom ``{"Processing": DescribeProcessingJob}``."""

    sagemaker_job_kind = "processing"
