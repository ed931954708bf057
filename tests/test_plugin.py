"""The custom plugin as MWAA loads it: plugins.zip unpacked, MWAA's packages only, and its links."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa.packaging import plugins_zip_bytes  # ruff: ignore[module-import-not-at-top-of-file]

from video_recommender import extra_links  # ruff: ignore[module-import-not-at-top-of-file]
from video_recommender.console_links import console_url, job_identity, logs_url  # ruff: ignore[module-import-not-at-top-of-file]

# Run in a fresh interpreter: the packages MWAA's requirements.txt does not bring raise
# ImportError, as they would on MWAA (the local engine's numba/llvmlite, optuna; test tools).
PLUGINS_MANAGER_PROBE = r"""
import importlib.abc, json, sys
class MwaaPackagesOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("numba", "llvmlite", "optuna", "moto", "pytest", "playwright"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, MwaaPackagesOnly())
main = sys.modules["__main__"]
import airflow.plugins_manager as pm
pm.ensure_plugins_loaded()
plugins_dir = sys.argv[1]
bare = sorted(k for k, m in sys.modules.items() if (getattr(m, "__file__", None) or "").startswith(plugins_dir)
              and "." not in k and k not in ("video_recommender", "recommender_plugin"))
links = sorted(type(link).__module__ + "." + type(link).__name__ for link in pm.get_operator_extra_links()
               if type(link).__module__.startswith("video_recommender"))
print(json.dumps({"errors": {str(k): str(v)[-300:] for k, v in pm.get_import_errors().items()}, "bare": bare,
                  "plugins": sorted(p.name for p in pm._get_plugins()[0]),
                  "links": links, "main_kept": sys.modules["__main__"] is main}))
"""


def load_plugins(plugins_dir: Path, airflow_home: Path) -> dict:
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_dir),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", PLUGINS_MANAGER_PROBE, str(plugins_dir)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_plugins_zip_loads_with_mwaa_packages_only(tmp_path: Path) -> None:
    # MWAA unpacks plugins.zip into its plugins folder; Airflow's plugins manager then imports
    # every module it does not ignore, by file stem, in every component.
    plugins = tmp_path / "plugins"
    zipfile.ZipFile(io.BytesIO(plugins_zip_bytes(REPO / "plugins"))).extractall(plugins)
    loaded = load_plugins(plugins, tmp_path / "home")
    assert loaded["errors"] == {}
    assert loaded["bare"] == []  # the package's modules are not registered under bare names ("fm", "settings")
    assert loaded["main_kept"]  # engine/__main__.py did not replace the process's __main__
    assert "video_recommender" in loaded["plugins"]
    assert loaded["links"] == [
        "video_recommender.extra_links.SageMakerJobConsoleLink",
        "video_recommender.extra_links.SageMakerJobLogsLink",
    ]


def test_a_plugin_needing_a_package_mwaa_lacks_is_an_import_error(tmp_path: Path) -> None:
    # The negative control of the test above: the probe really hides numba from the plugins manager.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "needs_numba.py").write_text("import numba\n")
    loaded = load_plugins(plugins, tmp_path / "home")
    assert [Path(k).name for k in loaded["errors"]] == ["needs_numba.py"]
    assert "numba" in next(iter(loaded["errors"].values()))


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
    assert links["evaluate"] == []
