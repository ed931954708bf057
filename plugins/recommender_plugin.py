"""The project's Airflow plugin: what the video recommender adds to Airflow's UI.

The only module Airflow's plugins manager loads from ``plugins/`` (``.airflowignore``
keeps it out of the ``video_recommender`` package). It registers the SageMaker job
tasks' and evaluate's extra links, which Airflow's and MWAA's Plugins page then lists,
and the reports view (``video_recommender.report_view``). What the UI shows
on a task's Details tab are the operator's own ``operator_extra_links`` (the same
objects, serialized with the DAG, their URLs stored as XComs when the task ends):
tests/test_browser_links.py fails without those, and passes with this list emptied.
It imports nothing beyond Airflow's SDK and FastAPI (which Airflow's API server is built
on): MWAA loads plugins in every component, often, and without the local engine's
packages.
"""

from __future__ import annotations

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from video_recommender.extra_links import RunReportLink, SageMakerJobConsoleLink, SageMakerJobLogsLink
from video_recommender.report_view import URL_PREFIX, create_app


class RecommenderPlugin(AirflowPlugin):
    """Video recommender on SageMaker FM: the job tasks' links and the runs' reports in the UI."""

    name = "video_recommender"
    operator_extra_links: ClassVar[list] = [SageMakerJobConsoleLink(), SageMakerJobLogsLink(), RunReportLink()]
    # The reports, served by the API server itself (Airflow 3.1+ fastapi_apps), shown in
    # the UI as a navigation entry and as a tab of each DAG run (external_views: hrefs
    # relative to the UI's base URL, {RUN_ID} filled in by the UI).
    fastapi_apps: ClassVar[list] = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Recommender reports"}]
    external_views: ClassVar[list] = [
        {
            "name": "Recommender reports",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "recommender-reports",
        },
        {
            "name": "Report",
            "href": URL_PREFIX.lstrip("/") + "/dag-run/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "recommender-run-report",
        },
    ]
