"""URLs of a SageMaker job's console page and CloudWatch logs, from what its task returned.

Plain functions (no Airflow): ``extra_links`` wraps them as operator extra links.
The URL shapes are the SageMaker console's own (``#/jobs/<name>`` and so on, as the
Amazon provider's ``SageMakerTransformJobLink`` uses for transform jobs) and the
CloudWatch console's logsV2 hash, where ``%`` is written ``$25`` and ``?``/``=`` as
``$3F``/``$3D`` (what the SageMaker console's "View logs" opens). SageMaker writes one
log stream per instance, ``<job name>/algo-1-<epoch>`` for training, so the link filters
the job's log group by the job name; a tuning job's trials are training jobs whose
names start with the tuning job's, so its link lists all of them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

# kind -> (XCom key of the Describe result, name field, ARN field, console path, log group)
JOB_KINDS: dict[str, tuple[str, str, str, str, str]] = {
    "training": ("Training", "TrainingJobName", "TrainingJobArn", "jobs", "/aws/sagemaker/TrainingJobs"),
    "tuning": (
        "Tuning",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobArn",
        "hyper-tuning-jobs",
        "/aws/sagemaker/TrainingJobs",
    ),
    "transform": ("Transform", "TransformJobName", "TransformJobArn", "transform-jobs", "/aws/sagemaker/TransformJobs"),
    "processing": (
        "Processing",
        "ProcessingJobName",
        "ProcessingJobArn",
        "processing-jobs",
        "/aws/sagemaker/ProcessingJobs",
    ),
}

# ARN partition -> console domain (the partitions SageMaker runs in).
CONSOLE_DOMAINS = {"aws": "aws.amazon.com", "aws-cn": "amazonaws.cn", "aws-us-gov": "amazonaws-us-gov.com"}


def job_identity(kind: str, returned: Any, request: Any = None) -> tuple[str, str | None, str] | None:
    """``(job name, region or None, partition)`` from the task's XCom, else from its request.

    The XCom's ARN (``arn:<partition>:sagemaker:<region>:<account>:…``) names the region the
    job really ran in; a task that failed before returning has only its request, which
    has the job's name but no region.
    """
    key, name_field, arn_field, _, _ = JOB_KINDS[kind]
    described = returned.get(key) if isinstance(returned, dict) else None
    if isinstance(described, dict) and described.get(name_field):
        arn = str(described.get(arn_field) or "")
        parts = arn.split(":")
        if len(parts) >= 6 and parts[0] == "arn":
            return described[name_field], parts[3] or None, parts[1]
        return described[name_field], None, "aws"
    if isinstance(request, dict):
        req = request.get(key, request) if kind == "transform" else request
        if isinstance(req, dict) and req.get(name_field):
            return req[name_field], None, "aws"
    return None


def console_url(kind: str, name: str, region: str, partition: str = "aws") -> str:
    """The SageMaker console page of one job."""
    path = JOB_KINDS[kind][3]
    domain = CONSOLE_DOMAINS.get(partition, CONSOLE_DOMAINS["aws"])
    return f"https://{region}.console.{domain}/sagemaker/home?region={region}#/{path}/{quote(name, safe='')}"


def logs_url(kind: str, name: str, region: str, partition: str = "aws") -> str:
    """The CloudWatch console's view of the job's log streams in its log group."""
    group = quote(JOB_KINDS[kind][4], safe="").replace("%", "$25")
    domain = CONSOLE_DOMAINS.get(partition, CONSOLE_DOMAINS["aws"])
    stream = quote(name, safe="").replace("%", "$25")
    return (
        f"https://{region}.console.{domain}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{group}$3FlogStreamNameFilter$3D{stream}"
    )
