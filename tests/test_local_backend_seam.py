"""The local backend behaves as the SageMaker one where the seam promises it: offline, through dag.test.

Processing mode runs end to end (the local Processing executor), a failed try is retried
under new names, and the teardown deletes the run's Model records.
"""

from __future__ import annotations

import json
from pathlib import Path

import dag_runs
import pytest

pytestmark = pytest.mark.e2e


def _run(monkeypatch: pytest.MonkeyPatch, storage: Path, conf: dict, **env: str):
    monkeypatch.setenv("RECOMMENDER_STORAGE_ROOT", storage.as_uri())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return dag_runs.run_dag(conf)


def test_processing_mode_runs_offline_end_to_end(airflow_db, monkeypatch, tmp_path) -> None:
    from video_recommender.layout import run_key

    state, states, run_id = _run(
        monkeypatch, tmp_path, {"synthetic_scale": 0.01, "seed": 7}, RECOMMENDER_DATA_STEPS="processing"
    )
    assert state == "success", json.dumps(states)
    assert states["preprocess"] == states["prepare"] == "success"
    run_dir = tmp_path / "runs" / run_key(run_id)
    # What the Processing jobs uploaded: the generated input, the preprocessed tables, RecordIO.
    assert (run_dir / "input" / "reviews.tsv.gz").exists()
    assert (run_dir / "preprocessed" / "summary.json").exists()
    assert list((run_dir / "recordio" / "test").glob("*.protobuf"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["rows"]["scored"] == metrics["rows"]["test"] > 0
    assert metrics["test_rmse"] < metrics["naive_rmse"]


def test_processing_mode_gives_the_same_recordio_as_worker_mode(airflow_db, monkeypatch, tmp_path) -> None:
    from video_recommender.layout import run_key

    outputs = {}
    for mode in ("worker", "processing"):
        state, states, run_id = _run(
            monkeypatch, tmp_path / mode, {"synthetic_scale": 0.01, "seed": 9}, RECOMMENDER_DATA_STEPS=mode
        )
        assert state == "success", json.dumps(states)
        recordio = tmp_path / mode / "runs" / run_key(run_id) / "recordio"
        outputs[mode] = {
            p.relative_to(recordio).as_posix(): p.read_bytes() for p in sorted(recordio.rglob("*.protobuf"))
        }
    assert outputs["worker"] and outputs["worker"] == outputs["processing"]


def test_a_failed_local_try_is_retried_under_new_names(airflow_db, monkeypatch, tmp_path) -> None:
    from video_recommender.engine import training
    from video_recommender.sagemaker_requests import job_name

    original = training.run_training_job
    submitted: list[str] = []

    def first_try_fails(request, resolve, emit=print):
        submitted.append(request["TrainingJobName"])
        if request["TrainingJobName"].endswith("-t1"):
            return {"TrainingJobName": request["TrainingJobName"], "TrainingJobStatus": "Failed",
                    "FailureReason": "ClientError: planted by the test"}  # fmt: skip
        return original(request, resolve, emit)

    monkeypatch.setattr(training, "run_training_job", first_try_fails)
    state, states, run_id = _run(
        monkeypatch, tmp_path, {"synthetic_scale": 0.01, "seed": 4},
        RECOMMENDER_JOB_RETRIES="1", RECOMMENDER_RETRY_DELAY_SECONDS="0",
    )  # fmt: skip
    assert state == "success", json.dumps(states)
    base = job_name("video-recsys", "train", run_id)
    assert submitted == [f"{base}-t1", f"{base}-t2"]


def test_the_local_teardown_deletes_the_runs_model(airflow_db, monkeypatch, tmp_path) -> None:
    from video_recommender.layout import run_key
    from video_recommender.sagemaker_requests import job_name

    registry = tmp_path / "local-sagemaker" / "models"
    registry.mkdir(parents=True)
    (registry / "another-run-model-t1.json").write_text("{}")  # not this run's: kept
    seen: list[str] = []
    from video_recommender.engine import transform

    original = transform.run_transform_job

    def record_models(config, resolve, emit=print, model_registry=None):
        result = original(config, resolve, emit, model_registry)
        seen.extend(p.name for p in registry.iterdir())
        return result

    monkeypatch.setattr(transform, "run_transform_job", record_models)
    state, states, run_id = _run(monkeypatch, tmp_path, {"synthetic_scale": 0.01, "seed": 6})
    assert state == "success" and states["delete_model"] == "success", json.dumps(states)
    model = f"{job_name('video-recsys', 'model', run_id)}-t1"
    assert f"{model}.json" in seen  # CreateModel recorded it during the transform ...
    assert sorted(p.name for p in registry.iterdir()) == ["another-run-model-t1.json"]  # ... the teardown removed it
    # Each job task built its request from the run id when it ran, and shows it as its rendered config
    # (the base names: the try's suffix is added at submission).
    base = model.removesuffix("-t1")
    assert dag_runs.rendered_config(run_id, "delete_model") == {"Model": {"ModelName": base}}
    transform_request = dag_runs.rendered_config(run_id, "transform")
    assert transform_request["Model"]["ModelName"] == transform_request["Transform"]["ModelName"] == base
    assert transform_request["Transform"]["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"].endswith(
        f"/runs/{run_key(run_id)}/recordio/test/"
    )
    assert dag_runs.rendered_config(run_id, "train")["TrainingJobName"] == job_name("video-recsys", "train", run_id)
