"""The run report: escaping of input-derived text, and its charts drawn by Chromium (screenshot in test-artifacts/report/)."""

from __future__ import annotations

import json
from pathlib import Path

from video_recommender.report import render

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "report"
HOSTILE = "</script><script>window.pwned = 1</script><b>bold</b>"


def minimal_data(title: str = "A title") -> dict:
    metrics = {
        "input": "file:///reviews.tsv.gz", "predictor_type": "regressor", "customers": 2, "videos": 3,
        "test_rmse": 0.9, "naive_rmse": 1.1,
        "rows": {"read": 10, "after_dedupe": 9, "train": 5, "validate": 2, "test": 2},
        "rmse_by_activity": [{"train_ratings": "0-4", "test_rows": 2, "rmse": 0.9, "naive_rmse": 1.1}],
    }  # fmt: skip
    return {
        "run": "r1",
        "metrics": metrics,
        "predicted_by_actual": [{"actual": 4.0, "rows": 2, "mean": 3.9, "p10": 3.5, "p50": 3.9, "p90": 4.3}],
        "samples": [{"customer_id": "c1", "liked": [title], "recommended": [{"title": title, "score": 4.2}]}],
    }


def test_text_from_the_input_cannot_break_out_of_the_report() -> None:
    html = render(minimal_data(HOSTILE))
    assert HOSTILE not in html and "<b>bold</b>" not in html
    assert "&lt;/script&gt;&lt;script&gt;window.pwned" in html  # shown as text in the sample lists
    payload = html.split('<script id="report-data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(payload)["samples"][0]["liked"] == [HOSTILE]  # the data survives, escaped


def test_the_report_draws_its_charts_in_chromium(chromium: str, airflow_db, monkeypatch, tmp_path) -> None:
    """A whole demo run on the local backend, then its report.html opened from disk, offline: four charts drawn."""
    import dag_runs
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("RECOMMENDER_STORAGE_ROOT", tmp_path.as_uri())
    state, states, _ = dag_runs.run_dag({})
    assert state == "success", states
    report = next(tmp_path.glob("runs/*/report.html"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 1800})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        page.wait_for_selector("body[data-charts-drawn]")
        drawn = page.evaluate("document.body.dataset.chartsDrawn")
        # every canvas has pixels of more than one colour (a chart, not a blank box)
        colours = page.evaluate(
            """() => [...document.querySelectorAll('canvas')].map(c => {
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 const seen = new Set();
                 for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2] + ',' + d[i + 3]);
                 return seen.size; })"""
        )
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        headline = page.locator("#headline").inner_text()
        samples = page.locator("#samples .card").count()
        browser.close()
    assert errors == [] and drawn == "4", (errors, drawn)  # the learning curve, from the job's log, and three more
    assert len(colours) == 4 and min(colours) > 5, colours
    assert "test RMSE" in headline and "NDCG@10" in headline and samples == 3
    assert requests == [report.as_uri()]  # nothing fetched: the report is self-contained


def test_the_vendored_chart_library_is_the_npm_release_named_in_its_readme() -> None:
    import hashlib

    from video_recommender.report import ASSETS, CHART_JS

    digest = hashlib.sha256(CHART_JS.read_bytes()).hexdigest()
    assert digest in (ASSETS / "README.md").read_text()
    assert CHART_JS.read_text().startswith("/*!\n * Chart.js v4.6.1")
    assert "MIT License" in (ASSETS / "chart-LICENSE.md").read_text()
