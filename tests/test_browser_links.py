"""The plugin's extra links in a real browser: the train task of a sagemaker-backend run in the runner.

The local runner runs the DAG on the sagemaker backend against a moto server (the
settings file points the aws_default connection's endpoint_url at it), in the MWAA-exact
environment without the local engine. Once ``train`` has succeeded, its task instance
page in Chromium must show the plugin's "SageMaker job" and "CloudWatch logs" links to
the job moto ran. Screenshot: test-artifacts/browser-links/train-extra-links.png.

moto completes jobs at once and writes no model, so the run fails later, at evaluate;
only the train task matters here.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import boto3
import pytest
from browser_ui import task_links
from runner_processes import free_port

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))
sys.path.insert(0, str(REPO / "plugins"))

from mwaa_local.components import Runner  # ruff: ignore[module-import-not-at-top-of-file]

from video_recommender.console_links import console_url, logs_url  # ruff: ignore[module-import-not-at-top-of-file]

pytestmark = pytest.mark.e2e
SHOT = REPO / "test-artifacts" / "browser-links" / "train-extra-links.png"
BUCKET = "recsys-links-test"
DAG = "video_recommender"


def test_the_train_task_links_to_its_sagemaker_job_and_logs(
    chromium: str, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)  # the runner passes them on, as boto3's default chain would find them
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=BUCKET)
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        json.dumps(  # JSON is YAML
            {
                "airflow_configuration_options": {
                    "recommender.backend": "sagemaker",
                    "recommender.region": "us-east-1",
                    "recommender.storage_root": f"s3://{BUCKET}/recsys",
                    "recommender.aws_conn_id": "aws_default",
                    "recommender.sagemaker_role_arn": "arn:aws:iam::123456789012:role/recsys-sagemaker",
                    "recommender.check_interval": "1",
                    "recommender.job_retries": "0",
                    "recommender.synthetic_scale": "0.01",
                },
                "connections": {
                    "aws_default": {
                        "conn_type": "aws",
                        "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
                    }
                },
            }
        )
    )
    runner = Runner(tmp_path / "runner", free_port(), settings_path=settings)
    try:
        info = runner.start()
        assert runner.pythonpath == "", "the sagemaker backend runs without the local engine's packages"
        token = runner.api("POST", "auth/token", {"username": "admin", "password": info["password"]})["access_token"]
        deadline = time.monotonic() + 120
        while not runner.api("GET", "api/v2/dags", token=token)["dags"]:
            assert time.monotonic() < deadline, "the dag-processor did not parse the DAG"
            time.sleep(2)
        runner.api("PATCH", f"api/v2/dags/{DAG}", {"is_paused": False}, token)
        run_id = runner.api("POST", f"api/v2/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {}}, token)[
            "dag_run_id"
        ]
        path = f"api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances"
        states: dict[str, str] = {}
        deadline = time.monotonic() + 300
        while states.get("train") not in ("success", "failed", "upstream_failed"):
            assert time.monotonic() < deadline, states
            time.sleep(2)
            states = {t["task_id"]: t["state"] for t in runner.api("GET", path, token=token)["task_instances"]}
        assert states["train"] == "success", (states, sorted(map(str, (runner.home / "logs").rglob("*.log"))))

        # The job moto ran, asked of moto itself, not of the task's XCom the links read.
        jobs = boto3.client("sagemaker", endpoint_url=moto_endpoint).list_training_jobs()["TrainingJobSummaries"]
        assert len(jobs) == 1
        job = jobs[0]["TrainingJobName"]
        expected = {
            "SageMaker job": console_url("training", job, "us-east-1"),
            "CloudWatch logs": logs_url("training", job, "us-east-1"),
        }
        assert expected["SageMaker job"] == (
            f"https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/{job}"
        )
        assert runner.api("GET", f"{path}/train/links", token=token)["extra_links"] == expected
        shown = task_links(runner.url, info["password"], run_id, "train", list(expected), SHOT, chromium)
        assert shown == expected
        assert SHOT.stat().st_size > 10_000
    finally:
        runner.stop()
