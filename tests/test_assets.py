"""Airflow Assets: the model and the recommendations are outlets with their run's URIs; the DAG can run on new reviews."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from video_recommender.assets import triggering_input

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from airflow.models import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["video_recommender"]
condition = getattr(dag.timetable, "asset_condition", None)
print(json.dumps({
    "timetable": type(dag.timetable).__name__,
    "schedule": [a.uri for a in condition.objects] if condition else None,
    "outlets": {t.task_id: [o.uri for o in t.outlets] for t in dag.tasks if t.outlets},
}))
"""


def parse(tmp_path: Path, **env: str) -> dict:
    environ = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__UNIT_TEST_MODE": "True", "PYTHONPATH": str(REPO / "plugins"),
               "RECOMMENDER_STORAGE_ROOT": "s3://bucket/prefix", **env}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags")], capture_output=True, text=True, env=environ
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_manual_by_default_and_scheduled_on_the_reviews_asset_when_named(tmp_path: Path) -> None:
    manual = parse(tmp_path)
    assert manual["timetable"] == "NullTimetable"
    assert manual["outlets"] == {
        "evaluate": ["s3://bucket/prefix/assets/model"],
        "recommend": ["s3://bucket/prefix/assets/recommendations"],
    }
    on_asset = parse(tmp_path, RECOMMENDER_INPUT_ASSET="s3://bucket/incoming/reviews.tsv.gz")
    assert on_asset["timetable"] == "AssetTriggeredTimetable"
    assert on_asset["schedule"] == ["s3://bucket/incoming/reviews.tsv.gz"]


def test_the_run_reads_the_file_of_the_event_that_started_it() -> None:
    asset = SimpleNamespace(uri="s3://bucket/incoming/reviews.tsv.gz")
    older = SimpleNamespace(timestamp=datetime(2026, 1, 1, tzinfo=UTC), extra={}, asset=asset)
    newer = SimpleNamespace(
        timestamp=datetime(2026, 1, 2, tzinfo=UTC), extra={"uri": "s3://bucket/incoming/2026-01-02.tsv.gz"},
        asset=asset,
    )  # fmt: skip
    assert triggering_input({"reviews": [older, newer]}) == "s3://bucket/incoming/2026-01-02.tsv.gz"
    assert triggering_input({"reviews": [older]}) == "s3://bucket/incoming/reviews.tsv.gz"
    assert triggering_input({}) is None and triggering_input(None) is None


def test_a_run_records_the_model_and_recommendations_events_with_its_uris(airflow_db, monkeypatch, tmp_path) -> None:
    import dag_runs
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    monkeypatch.setenv("RECOMMENDER_STORAGE_ROOT", tmp_path.as_uri())
    state, states, run_id = dag_runs.run_dag({"synthetic_scale": 0.01})
    assert state == "success", states
    with create_session() as session:
        events = {
            uri: extra
            for uri, extra in session.execute(
                select(AssetModel.uri, AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetEvent.source_run_id == run_id)
            )
        }  # fmt: skip
    root = tmp_path.as_uri()
    model, recs = events[f"{root}/assets/model"], events[f"{root}/assets/recommendations"]
    assert model["model_uri"].endswith("/output/model.tar.gz") and model["training_job"]
    assert model["test_rmse"] < model["naive_rmse"] and model["report_uri"].endswith("/report.html")
    assert Path(recs["recommendations_uri"].removeprefix("file://")).exists()
    assert recs["model_uri"] == model["model_uri"]

    monkeypatch.setenv("RECOMMENDER_STORAGE_ROOT", (tmp_path / "moved").as_uri())
    state, states, _ = dag_runs.run_dag({"synthetic_scale": 0.01})
    assert state == "success", states  # a new storage root: new assets, not inactive ones
