"""Task bodies: backend checks and storage paths (the Airflow-aware glue)."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.exceptions import AirflowException

from video_recommender import tasks
from video_recommender.settings import Settings


def test_sagemaker_backend_needs_s3_and_a_role(tmp_path: Path) -> None:
    from airflow.exceptions import AirflowException

    settings = Settings(storage_root=tmp_path.as_uri(), backend="sagemaker", region="mars-1")
    with pytest.raises(AirflowException) as err:
        tasks.start(settings, "manual__1")
    message = str(err.value)
    assert "needs an s3://bucket/prefix root" in message
    assert "RECOMMENDER_SAGEMAKER_ROLE_ARN=''" in message
    assert "region 'mars-1'" in message
    ok = Settings(
        storage_root="s3://bucket/prefix", backend="sagemaker", sagemaker_role_arn="arn:aws:iam::123456789012:role/sm"
    )
    assert tasks.settings_problems(ok) == []


def test_start_fixes_the_run_folder_under_the_storage_root(tmp_path: Path) -> None:
    run = tasks.start(Settings(storage_root=tmp_path.as_uri()), "manual__2026-11-25T10:00:00+00:00")
    assert run["run_root"] == f"{tmp_path.as_uri()}/runs/manual__2026-11-25T10_00_00_00_00"


@pytest.mark.parametrize("form", ["plain", "file-uri"])
def test_input_paths_accept_plain_paths_and_file_uris(tmp_path: Path, form: str) -> None:
    target = tmp_path / "reviews.tsv"
    target.write_text("x")
    uri = str(target) if form == "plain" else target.as_uri()
    path = tasks.storage_path(uri, Settings(storage_root=tmp_path.as_uri()))
    assert path.read_text() == "x" and path.protocol == "file"


def test_uris_drop_the_connection_id() -> None:
    from airflow.sdk import ObjectStoragePath

    from video_recommender.storage import uri

    assert uri(ObjectStoragePath("s3://bucket/prefix/key.txt", conn_id="aws_default")) == "s3://bucket/prefix/key.txt"
    assert uri(ObjectStoragePath("file:///tmp/x/y")) == "file:///tmp/x/y"
    assert uri(Path("/tmp/x")) == "/tmp/x"


class _TI:
    """A task instance's XCom push and pull over a dict of (task id, key) -> value."""

    def __init__(self, task_id: str = "", xcoms: dict | None = None) -> None:
        self.task_id, self.xcoms, self.pulled = task_id, dict(xcoms or {}), []

    def xcom_push(self, key: str, value) -> None:
        self.xcoms[self.task_id, key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value"):
        self.pulled.append((task_ids, key))
        return self.xcoms.get((task_ids, key))


@pytest.mark.parametrize("hpo", [True, False])
def test_trained_pulls_the_branch_that_choose_training_took_and_only_that(hpo: bool) -> None:
    branch = _TI("choose_training")
    assert tasks.choose_training(branch, {"run_hyperparameter_opt": hpo}) == ("tune" if hpo else "train")
    results = {("tune", "return_value"): {"Tuning": {}}, ("train", "return_value"): {"Training": {}}}
    later = _TI("evaluate", {**branch.xcoms, **results})
    assert tasks.trained(later) == ((None, {"Tuning": {}}) if hpo else ({"Training": {}}, None))
    # the skipped branch's XCom is never asked for
    assert later.pulled == [("choose_training", "branch"), ("tune" if hpo else "train", "return_value")]


def test_trained_without_a_recorded_branch_says_so() -> None:
    with pytest.raises(AirflowException, match="choose_training chose None"):
        tasks.trained(_TI("evaluate"))
