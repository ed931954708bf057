"""The plugin's report view: Airflow's own DAG-run access check, the runs list, a run's report, bad run keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from video_recommender import report_view


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECOMMENDER_STORAGE_ROOT", tmp_path.as_uri())
    run = tmp_path / "runs" / "manual__2026-12-04T10_00_00_00_00"
    run.mkdir(parents=True)
    (run / "report.html").write_text("<html><body>the report</body></html>")
    ranking = {"k": 10, "model": {"ndcg_at_10": 0.1}, "most_popular": {"ndcg_at_10": 0.2}}
    (run / "metrics.json").write_text(json.dumps({"test_rmse": 0.85, "naive_rmse": 1.13, "ranking": ranking}))
    (tmp_path / "runs" / "without_report").mkdir()
    (tmp_path / "report.html").write_text("not a report: outside the runs folder")
    return tmp_path


@pytest.fixture
def client(storage: Path) -> TestClient:
    app = report_view.create_app()
    check = app.router.dependencies[0].dependency
    app.dependency_overrides[check] = lambda: None  # signed in, allowed to read the DAG's runs
    return TestClient(app)


def test_without_a_token_nothing_is_served(storage: Path) -> None:
    response = TestClient(report_view.create_app()).get("/")
    assert response.status_code == 401 and "Not authenticated" in response.text


def test_the_runs_list_links_each_report_with_its_headline(client: TestClient) -> None:
    page = client.get("/").text
    assert 'href="runs/manual__2026-12-04T10_00_00_00_00/report"' in page
    assert "test RMSE 0.8500 vs naive 1.1300; NDCG@10 0.1000 vs most popular 0.2000" in page
    assert "without_report" not in page


def test_a_run_report_by_run_key_and_by_dag_run_id(client: TestClient) -> None:
    by_key = client.get("/runs/manual__2026-12-04T10_00_00_00_00/report")
    by_run = client.get("/dag-run/manual__2026-12-04T10:00:00+00:00")
    assert by_key.status_code == by_run.status_code == 200
    assert by_key.text == by_run.text == "<html><body>the report</body></html>"
    assert by_key.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("key", ["without_report", "%2E%2E", "nope"])  # %2E%2E: ".." past the client
def test_no_report_or_a_key_outside_the_runs_is_404(client: TestClient, key: str) -> None:
    response = client.get(f"/runs/{key}/report")
    assert response.status_code == 404
    assert "not a report" not in response.text


def test_the_report_link_points_at_the_view() -> None:
    from types import SimpleNamespace

    from video_recommender.extra_links import RunReportLink

    key = SimpleNamespace(run_id="manual__2026-12-04T10:00:00+00:00")
    assert RunReportLink().get_link(None, ti_key=key) == "/recommender/runs/manual__2026-12-04T10_00_00_00_00/report"
