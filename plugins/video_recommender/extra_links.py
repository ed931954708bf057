"""Operator extra links of the SageMaker job tasks: the job's console page and its logs.

Airflow 3 computes an operator's links on the worker when the task ends (the task
runner's ``finalize`` calls ``get_link`` and stores the URL as an XCom the UI reads), so
the link sees the operator as it ran: its per-try request, and its return value. The
classes are registered by ``recommender_plugin.RecommenderPlugin``.

The local backend has no links: its job log is the task's own log, and its files are
``file://`` paths that a browser refuses to open from the UI's ``http(s)`` page.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

from video_recommender.console_links import console_url, job_identity, logs_url


def _job_kind(operator: Any) -> str | None:
    return getattr(operator, "sagemaker_job_kind", None)


def _identity(operator: Any, ti_key: Any) -> tuple[str, str, str] | None:
    kind = _job_kind(operator)
    if kind is None:
        return None
    try:
        returned = XCom.get_value(ti_key=ti_key, key="return_value")
    except Exception:  # no XCom (the task failed), or a store that cannot be read: the request still names the job
        returned = None
    found = job_identity(kind, returned, getattr(operator, "config", None))
    if found is None:
        return None
    name, region, partition = found
    region = region or getattr(operator, "region_name", None)
    return (name, region, partition) if region else None


class SageMakerJobConsoleLink(BaseOperatorLink):
    """The SageMaker console page of the task's job."""

    name = "SageMaker job"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        found = _identity(operator, ti_key)
        return console_url(_job_kind(operator), *found) if found else ""


class SageMakerJobLogsLink(BaseOperatorLink):
    """The CloudWatch log streams of the task's job."""

    name = "CloudWatch logs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        found = _identity(operator, ti_key)
        return logs_url(_job_kind(operator), *found) if found else ""


SAGEMAKER_JOB_LINKS = (SageMakerJobConsoleLink(), SageMakerJobLogsLink())


class RunReportLink(BaseOperatorLink):
    """The run's report, served by the plugin's view (``report_view``) from the storage root."""

    name = "Report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from urllib.parse import quote

        from video_recommender.layout import run_key

        # relative to the UI's own address, as the plugin's view is mounted on the API server
        return f"{_ui_base()}/recommender/runs/{quote(run_key(ti_key.run_id))}/report"


def _ui_base() -> str:
    """``[api] base_url`` without its trailing slash, or "" when the UI is at the server's root."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return urlsplit(base).path.rstrip("/") if base else ""
