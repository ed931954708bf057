"""The custom plugin's operator extra links: URLs, their sources, and the serialized DAG naming them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))


from video_recommender import extra_links  # ruff: ignore[module-import-not-at-top-of-file]
from video_recommender.console_links import console_url, job_identity, logs_url  # ruff: ignore[module-import-not-at-top-of-file]

# The plugins manager on the unpacked plugins.zip with MWAA's package set only (0 import errors,
# 0 bare modules, the plugin and its links) is tests/test_mwaa_env.py::test_a_fresh_package_loads_cleanly.


TRAINING_XCOM = {
    "Training": {
        "TrainingJobName": "recsys-train-t1",
        "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:training-job/recsys-train-t1",
    }
}


def test_console_and_logs_urls_come_from_the_xcoms_arn() -> None:
    name, region, partition = job_identity("training", TRAINING_XCOM)
    assert (name, region, partition) == ("recsys-train-t1", "eu-west-1", "aws")
    assert console_url("training", name, region) == (
        "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/recsys-train-t1"
    )
    assert logs_url("training", name, region) == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs$3FlogStreamNameFilter$3Drecsys-train-t1"
    )
    china = {
        "Transform": {"TransformJobName": "t", "TransformJobArn": "arn:aws-cn:sagemaker:cn-north-1:1:transform-job/t"}
    }
    assert console_url("transform", *job_identity("transform", china)).startswith(
        "https://cn-north-1.console.amazonaws.cn/sagemaker/home?region=cn-north-1#/transform-jobs/t"
    )


@pytest.mark.parametrize(
    ("kind", "request_dict", "name"),
    [
        ("training", {"TrainingJobName": "a-t2"}, "a-t2"),
        ("tuning", {"HyperParameterTuningJobName": "b-t1"}, "b-t1"),
        ("transform", {"Model": {"ModelName": "m"}, "Transform": {"TransformJobName": "c-t1"}}, "c-t1"),
        ("processing", {"ProcessingJobName": "d-t3"}, "d-t3"),
    ],
)
def test_a_failed_task_still_links_to_its_job_from_the_request(kind: str, request_dict: dict, name: str) -> None:
    assert job_identity(kind, None, request_dict) == (name, None, "aws")
    assert job_identity(kind, None, {}) is None


def test_links_use_the_return_value_then_the_operators_region(monkeypatch: pytest.MonkeyPatch) -> None:
    operator = SimpleNamespace(
        sagemaker_job_kind="training", config={"TrainingJobName": "x-t2"}, region_name="us-west-2"
    )
    monkeypatch.setattr(extra_links.XCom, "get_value", classmethod(lambda cls, **kw: TRAINING_XCOM))
    assert (
        extra_links.SageMakerJobConsoleLink()
        .get_link(operator, ti_key=None)
        .startswith("https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/recsys-train-t1")
    )

    def no_xcom(cls, **kw):
        raise KeyError("return_value")

    monkeypatch.setattr(extra_links.XCom, "get_value", classmethod(no_xcom))
    assert "region=us-west-2#/jobs/x-t2" in extra_links.SageMakerJobConsoleLink().get_link(operator, ti_key=None)
    assert "TrainingJobs$3FlogStreamNameFilter$3Dx-t2" in extra_links.SageMakerJobLogsLink().get_link(
        operator, ti_key=None
    )
    local = SimpleNamespace(config={"TrainingJobName": "x"})  # local backend: no SageMaker job, no link
    assert extra_links.SageMakerJobConsoleLink().get_link(local, ti_key=None) == ""


def test_sagemaker_tasks_carry_both_links(monkeypatch: pytest.MonkeyPatch) -> None:
    from video_recommender.sagemaker_operators import (
        SageMakerProcessingJob,
        SageMakerTrainingJob,
        SageMakerTransformJob,
        SageMakerTuningJob,
    )

    for cls in (SageMakerTrainingJob, SageMakerTuningJob, SageMakerTransformJob, SageMakerProcessingJob):
        assert [link.name for link in cls.operator_extra_links] == ["SageMaker job", "CloudWatch logs"], cls


SERIALIZE_PROBE = r"""
import json, sys
from airflow.models import DagBag
from airflow.serialization.serialized_objects import DagSerialization
dag = DagBag(dag_folder=sys.argv[1]).dags["video_recommender"]
# What the DAG processor stores and the API server reads back: links are named by the
# serialized task, and their URLs come from the XComs the worker pushed (Airflow 3).
restored = DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(dag))))
print(json.dumps({t: sorted(restored.get_task(t).extra_links) for t in ("train", "tune", "transform", "evaluate")}))
"""


def test_the_serialized_dag_names_the_links_on_the_sagemaker_job_tasks(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
           "PYTHONPATH": str(REPO / "plugins"), "RECOMMENDER_BACKEND": "sagemaker",
           "RECOMMENDER_STORAGE_ROOT": "s3://bucket/prefix",
           "RECOMMENDER_SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", SERIALIZE_PROBE, str(REPO / "dags")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    links = json.loads(done.stdout.splitlines()[-1])
    for task in ("train", "tune", "transform"):
        assert links[task] == ["CloudWatch logs", "SageMaker job"], links
    assert links["evaluate"] == ["Report"]  # the run report, through the plugin view
