"""The Airflow UI's view of the runs' reports: a FastAPI app the plugin mounts on the API server.

Routes, under the plugin's ``url_prefix`` (``/recommender``):

- ``/``: the runs under ``<storage root>/runs/`` that have a report, newest first, with
  their headline metric;
- ``/runs/<run key>/report``: that run's ``report.html``, read from the storage root
  (``file://`` locally, ``s3://`` on MWAA, through ``ObjectStoragePath``);
- ``/dag-run/<run id>``: the report of a DAG run, for the DAG run's "Report" tab
  (the run key is made from the run id as the tasks make it).

Every route needs what the UI itself needs to see the DAG's runs: Airflow's own
``requires_access_dag("GET", RUN)`` check on the ``video_recommender`` DAG, with the
token the UI holds (the ``_token`` cookie the browser sends to the iframe, or a bearer
token). FastAPI plugin apps get no authentication from Airflow otherwise.
"""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from video_recommender.layout import RunPaths, run_key, runs_folder

log = logging.getLogger(__name__)

DAG_ID = "video_recommender"
URL_PREFIX = "/recommender"
_RUN_KEY = re.compile(r"[A-Za-z0-9._-]+")


def _storage_root() -> Any:
    from video_recommender.settings import Settings
    from video_recommender.tasks import storage_path

    settings = Settings.from_env()
    return storage_path(settings.storage_root, settings)


def _run_folder(root: Any, key: str) -> Any:
    if not _RUN_KEY.fullmatch(key) or key in (".", ".."):
        raise HTTPException(status_code=404, detail=f"no run {key!r}")
    return RunPaths(runs_folder(root) / key)


def _report(root: Any, key: str) -> HTMLResponse:
    report = _run_folder(root, key).report
    if not report.exists():
        raise HTTPException(status_code=404, detail=f"run {key} has no report (yet): {report}")
    return HTMLResponse(report.read_bytes().decode("utf-8"))


def _headline(run: RunPaths) -> str:
    try:
        m = json.loads(run.metrics.read_text())
    except (OSError, ValueError):
        return ""
    if "test_rmse" in m:
        text = f"test RMSE {m['test_rmse']:.4f} vs naive {m['naive_rmse']:.4f}"
    else:
        text = f"test F1 {m.get('test_f1', 0):.4f} vs always-like {m.get('always_like_f1', 0):.4f}"
    ranking = m.get("ranking")
    if ranking:
        k = ranking["k"]
        text += f"; NDCG@{k} {ranking['model'][f'ndcg_at_{k}']:.4f} vs most popular {ranking['most_popular'][f'ndcg_at_{k}']:.4f}"
    return text


def runs_page(root: Any) -> str:
    runs = runs_folder(root)
    reported = [RunPaths(f) for f in (runs.iterdir() if runs.exists() else [])]
    rows = []
    for run in sorted((r for r in reported if r.report.exists()), key=lambda r: r.root.name, reverse=True):
        name = html.escape(run.root.name)
        rows.append(f'<tr><td><a href="runs/{name}/report">{name}</a></td><td>{html.escape(_headline(run))}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="2">No run has a report yet.</td></tr>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Recommender reports</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.3rem .8rem;text-align:left}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        f"<h1>Video recommender: run reports</h1><p>Storage root: {html.escape(str(root))}</p>"
        f'<table id="runs"><tr><th>run</th><th>headline</th></tr>{body}</table></body></html>'
    )


def _can_read_runs():
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID)


def create_app() -> FastAPI:
    app = FastAPI(title="Video recommender reports", dependencies=[Depends(_can_read_runs())])

    @app.get("/", response_class=HTMLResponse)
    def list_runs() -> HTMLResponse:
        return HTMLResponse(runs_page(_storage_root()))

    @app.get("/runs/{key}/report", response_class=HTMLResponse)
    def run_report(key: str) -> HTMLResponse:
        return _report(_storage_root(), key)

    @app.get("/dag-run/{run_id:path}", response_class=HTMLResponse)
    def dag_run_report(run_id: str) -> HTMLResponse:
        return _report(_storage_root(), run_key(run_id))

    return app
