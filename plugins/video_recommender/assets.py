"""The workflow's Airflow Assets: the reviews it can be scheduled on, the model and the recommendations it produces.

Cheap to import (the DAG file builds them at parse time): URIs from the settings only.
Each asset is named by its URI (Airflow's default): Airflow allows one URI per name,
and marks an asset whose name is already taken by another URI inactive, which fails
the task that has it as an outlet. So a changed storage root gives new assets instead
of failing every run.
Each run's outlet event carries where the run's own files are (``extra``), so a
downstream DAG scheduled on an asset, e.g. one that deploys the model to an endpoint,
reads ``triggering_asset_events`` to find them.
"""

from __future__ import annotations

from airflow.sdk import Asset

from video_recommender.settings import Settings


def model_asset(settings: Settings) -> Asset:
    """The evaluated model: updated by ``evaluate``, extra = model URI, training job, test metrics, report."""
    return Asset(f"{settings.storage_root}/assets/model")


def recommendations_asset(settings: Settings) -> Asset:
    """Every customer's top-N: updated by ``recommend``, extra = the Parquet and JSON lines URIs."""
    return Asset(f"{settings.storage_root}/assets/recommendations")


def input_asset(settings: Settings) -> Asset | None:
    """The reviews file to run on when an event for it is recorded (``RECOMMENDER_INPUT_ASSET``), or None."""
    return Asset(settings.input_asset_uri) if settings.input_asset_uri else None


def triggering_input(triggering_asset_events: dict | None) -> str | None:
    """The reviews URI of the asset event that started this run: its ``extra["uri"]``, else the asset's URI."""
    latest = None
    for events in (triggering_asset_events or {}).values():
        for event in events:
            if latest is None or event.timestamp > latest.timestamp:
                latest = event
    if latest is None:
        return None
    return (latest.extra or {}).get("uri") or latest.asset.uri
