"""A smoke run after a deploy: trigger a DAG on MWAA through InvokeRestApi and wait for its end.

InvokeRestApi calls the environment's Airflow REST API (v2 on Airflow 3) with the caller's
IAM identity. Before the trigger: wait until Airflow serves the deployed DAG file's code (MWAA
syncs dags/ and re-parses by itself, so a run triggered at once could run the old code), and
unpause the DAG (a run of a paused DAG stays queued; MWAA creates DAGs paused).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys_mwaa.deploy import DeployError

Say = Callable[[str], None]
DAG_ID = "video_recommender"
SMOKE_CONF = {"synthetic_scale": 0.01}  # 1 % of the demo data: a fast, cheap run
PATH_LIMIT = 64  # InvokeRestApi's Path length limit (botocore's model; botocore itself does not check it)
ENDED = ("success", "failed")


class RestApiError(DeployError):
    """Airflow's REST API answered with an HTTP error (RestApiClientException / RestApiServerException)."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        super().__init__(f"Airflow REST API {method} {path}: HTTP {status}: {detail}")
        self.status = status


def call(mwaa: Any, name: str, method: str, path: str, body: dict | None = None) -> dict:
    """One Airflow REST API call through InvokeRestApi; its response body."""
    if len(path) > PATH_LIMIT:
        raise DeployError(f"REST API path {path} is longer than InvokeRestApi's {PATH_LIMIT} characters")
    request = {"Name": name, "Path": path, "Method": method} | ({} if body is None else {"Body": body})
    try:
        return mwaa.invoke_rest_api(**request)["RestApiResponse"]
    except (mwaa.exceptions.RestApiClientException, mwaa.exceptions.RestApiServerException) as exc:
        response = exc.response.get("RestApiResponse") or {}
        detail = (
            response.get("detail", exc.response.get("Error", {}).get("Message"))
            if isinstance(response, dict)
            else response
        )
        text = detail if isinstance(detail, str) else json.dumps(detail)
        raise RestApiError(method, path, exc.response.get("RestApiStatusCode"), " ".join(str(text).split())) from None


def dag_source(dags: Path, dag_id: str) -> str | None:
    """The text of the one DAG file in ``dags`` that sets ``dag_id="<dag_id>"``, if exactly one does."""
    texts = [p.read_text() for p in sorted(dags.glob("*.py"))]
    found = [t for t in texts if f'dag_id="{dag_id}"' in t or f"dag_id='{dag_id}'" in t]
    return found[0] if len(found) == 1 else None


def smoke(
    mwaa: Any,
    name: str,
    dag_id: str = DAG_ID,
    conf: dict | None = None,
    *,
    source: str | None = None,
    timeout_seconds: float = 3600,
    poll_seconds: float = 30,
    say: Say = print,
) -> str:
    """Trigger ``dag_id`` with ``conf`` and return the run's final state (success or failed).

    ``source``: the deployed DAG file's text; the trigger waits until Airflow serves it. A
    DeployError when the whole wait exceeds ``timeout_seconds``.
    """
    conf = SMOKE_CONF if conf is None else conf
    deadline = time.monotonic() + timeout_seconds

    def wait(what: str) -> None:
        if time.monotonic() > deadline:
            raise DeployError(f"smoke run of {dag_id}: {what} after {timeout_seconds:.0f} s")
        say(f"smoke run of {dag_id}: {what}")
        time.sleep(poll_seconds)

    while True:
        try:
            served = call(mwaa, name, "GET", f"/dagSources/{dag_id}").get("content")
        except RestApiError as exc:
            if exc.status != 404:
                raise
            served = None  # not synced or parsed yet
        if served is not None and (source is None or served == source):
            break
        wait("Airflow does not serve the deployed DAG code yet" if served else "DAG not in Airflow yet")
    if call(mwaa, name, "GET", f"/dags/{dag_id}").get("is_paused"):
        say(f"unpausing {dag_id}: a run of a paused DAG stays queued")
        call(mwaa, name, "PATCH", f"/dags/{dag_id}", {"is_paused": False})
    # Our own short run id: Airflow's manual__<ISO time> would make the run's path longer than
    # InvokeRestApi allows. logical_date null: a manual run needs none (Airflow 3).
    run_id = f"smoke-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    run = call(mwaa, name, "POST", f"/dags/{dag_id}/dagRuns", body)
    say(f"triggered {dag_id} run {run_id} with conf {json.dumps(conf)}")
    while run["state"] not in ENDED:
        wait(f"run {run_id} {run['state']}")
        run = call(mwaa, name, "GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    say(f"smoke run {dag_id} {run_id}: {run['state']}")
    return run["state"]
