"""The project's Airflow plugin: what the video recommender adds to Airflow's UI.

The only module Airflow's plugins manager loads from ``plugins/`` (``.airflowignore``
keeps it out of the ``video_recommender`` package). It registers the SageMaker job
tasks' extra links, which Airflow's and MWAA's Plugins page then lists. What the UI shows
on a task's Details tab are the operator's own ``operator_extra_links`` (the same
objects, serialized with the DAG, their URLs stored as XComs when the task ends):
tests/test_browser_links.py fails without those, and passes with this list emptied.
It imports nothing beyond Airflow's SDK: MWAA loads plugins in every component, often,
and without the local engine's packages.
"""

from __future__ import annotations

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from video_recommender.extra_links import SageMakerJobConsoleLink, SageMakerJobLogsLink


class RecommenderPlugin(AirflowPlugin):
    """Video recommender on SageMaker FM: the job tasks' console and CloudWatch links."""

    name = "video_recommender"
    operator_extra_links: ClassVar[list] = [SageMakerJobConsoleLink(), SageMakerJobLogsLink()]
