"""The run report: escaping of input-derived text, and its charts drawn by Chromium (screenshots in test-artifacts/report/)."""

from __future__ import annotations

import json
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from test_tuning_trials import CONFIG as TUNING_CONFIG

from video_recommender.report import render
from video_recommender.tuning_trials import trials_for_report

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


@contextmanager
def opened_report(chromium: str, report: Path, height: int) -> Generator[tuple[Any, list[str], list[str]]]:
    """The report open in headless Chromium, its charts drawn: (page, page errors, URLs requested)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": height})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        page.wait_for_selector("body[data-charts-drawn]")
        try:
            yield page, errors, requests
        finally:
            browser.close()


def test_the_report_draws_its_charts_in_chromium(chromium: str, airflow_db, monkeypatch, tmp_path) -> None:
    """A whole demo run on the local backend, then its report.html opened from disk, offline: four charts drawn."""
    import dag_runs

    monkeypatch.setenv("RECOMMENDER_STORAGE_ROOT", tmp_path.as_uri())
    state, states, _ = dag_runs.run_dag({})
    assert state == "success", states
    report = next(tmp_path.glob("runs/*/report.html"))
    with opened_report(chromium, report, height=1800) as (page, errors, requests):
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
    assert errors == [] and drawn == "4", (errors, drawn)  # the learning curve, from the job's log, and three more
    assert len(colours) == 4 and min(colours) > 5, colours
    assert "test RMSE" in headline and "NDCG@10" in headline and samples == 3
    assert requests == [report.as_uri()]  # nothing fetched: the report is self-contained


def tuning_trials(count: int = 12) -> dict:
    """A tuning job's trials as the report gets them: completed, stopped early, one failed, one pending."""
    import datetime as dt

    t0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    summaries = []
    for i in range(count):
        lr, epochs, batch = 0.0006 * (1.1**i), 10 + 6 * i, ["200", "1000", "5000"][i % 3]
        status = "Failed" if i == 3 else "InProgress" if i == count - 1 else "Stopped" if i % 4 == 2 else "Completed"
        summary = {
            "TrainingJobName": f"video-recsys-tune-x-{i + 1:03d}-0123abcd",
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/video-recsys-tune-x-{i + 1:03d}",
            "CreationTime": t0 + dt.timedelta(minutes=(7 * i) % count),  # not in name order
            "TrainingJobStatus": status,
            "TunedHyperParameters": {"factors_lr": repr(lr), "epochs": str(epochs), "mini_batch_size": batch},
            "ObjectiveStatus": {"Failed": "Failed", "InProgress": "Pending"}.get(status, "Succeeded"),
        }
        if summary["ObjectiveStatus"] == "Succeeded":  # better with time, with noise; worse when stopped early
            value = 0.97 - 0.01 * ((7 * i) % count) + 0.015 * ((i * 5) % 3) + (0.03 if status == "Stopped" else 0)
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "test:rmse", "Value": value}
        if status == "Failed":
            summary["FailureReason"] = "AlgorithmError: <b>out of memory</b>"
        summaries.append(summary)
    return trials_for_report(summaries, TUNING_CONFIG)


def test_the_tuning_section_is_there_only_with_trials() -> None:
    assert 'id="tuning-by-trial"' not in render({**minimal_data(), "tuning_trials": None})
    html = render({**minimal_data(), "tuning_trials": tuning_trials()})
    assert html.count('<canvas id="tuning-') == 4  # by trial, and one per tuned hyper-parameter
    assert "12 training jobs" in html
    unscored = html.split('id="tuning-unscored">')[1].split("</p>")[0]
    assert "InProgress (objective Pending)" in unscored and "Failed (objective Failed)" in unscored
    assert "&lt;b&gt;out of memory&lt;/b&gt;" in unscored  # a failure reason is text, not markup


def test_evaluate_puts_the_tuning_trials_into_the_report(tmp_path: Path, demo_reviews: Path) -> None:
    """evaluate_step(..., tuning_trials=...) -> write_report -> the report's data and its tuning section."""
    from scored_runs import scored_run

    from video_recommender.evaluate import evaluate_step

    run = scored_run(tmp_path / "run", demo_reviews)
    trials = tuning_trials()
    evaluate_step(run, "regressor", None, None, tuning_trials=trials)
    html = run.report.read_text()
    payload = html.split('<script id="report-data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(payload)["tuning_trials"] == trials
    assert '<canvas id="tuning-by-trial">' in html
    evaluate_step(run)  # without: no tuning section
    assert '<canvas id="tuning-' not in run.report.read_text()


def test_the_report_draws_the_tuning_trials_in_chromium(chromium: str) -> None:
    """A report with a tuning job's trials: the objective by trial and one scatter per tuned hyper-parameter,
    each drawn (not blank), on a log, linear or category axis as the range says."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = ARTIFACTS / "report-tuning.html"
    report.write_text(render({**minimal_data(), "tuning_trials": tuning_trials()}))
    with opened_report(chromium, report, height=2200) as (page, errors, _):
        drawn = page.evaluate("document.body.dataset.chartsDrawn")
        charts = page.evaluate(
            """() => Object.values(Chart.instances).filter(c => c.canvas.id.startsWith('tuning-')).map(c => {
                 const d = c.canvas.getContext('2d').getImageData(0, 0, c.canvas.width, c.canvas.height).data;
                 const seen = new Set();
                 for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2] + ',' + d[i + 3]);
                 return {id: c.canvas.id, colours: seen.size, x: c.scales.x.type,
                         ticks: c.scales.x.ticks.map(t => t.label).filter(l => l !== ''),
                         points: c.data.datasets.filter(s => s.label !== 'best so far')
                                  .reduce((n, s) => n + c.getDatasetMeta(c.data.datasets.indexOf(s)).data
                                                         .filter(e => !e.skip && isFinite(e.x) && isFinite(e.y)).length, 0),
                         labels: c.data.datasets.map(s => s.label)}; })"""
        )
        page.locator("#tuning").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "report-tuning.png"), full_page=True)
    assert errors == [] and drawn == "6", (errors, drawn)  # two charts of minimal_data, four of the tuning
    by_id = {c["id"]: c for c in charts}
    assert set(by_id) == {"tuning-by-trial", "tuning-parameter-0", "tuning-parameter-1", "tuning-parameter-2"}
    assert all(c["colours"] > 5 for c in charts), charts
    # 12 trials, one failed and one pending without a value: 10 points on every chart
    assert all(c["points"] == 10 for c in charts), charts
    assert by_id["tuning-by-trial"]["labels"] == ["completed", "stopped early", "best so far"]
    assert [by_id[f"tuning-parameter-{i}"]["x"] for i in range(3)] == ["logarithmic", "linear", "category"]
    # The log axis is labelled at whole digits of a decade (Chart.js's own ticks, such as 0.00075
    # and 0.0013, crowd at each decade's low end).
    log_ticks = [float(t) for t in by_id["tuning-parameter-0"]["ticks"]]
    assert 2 <= len(log_ticks) <= 10 and all(float(f"{t:.0e}") == t for t in log_ticks), log_ticks


def test_the_vendored_chart_library_is_the_npm_release_named_in_its_readme() -> None:
    import hashlib

    from video_recommender.report import ASSETS, CHART_JS

    digest = hashlib.sha256(CHART_JS.read_bytes()).hexdigest()
    assert digest in (ASSETS / "README.md").read_text()
    assert CHART_JS.read_text().startswith("/*!\n * Chart.js v4.6.1")
    assert "MIT License" in (ASSETS / "chart-LICENSE.md").read_text()
