"""The local FM engine: training job, metric lines, model artifact, batch transform."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fm_jobs import TRAIN_RMSE_EPOCH, training_request, transform_config

from video_recommender.engine.artifacts import (
    FMModel,
    ModelArtifactError,
    load_ndarray_list,
    read_model_tar_gz,
    save_ndarray_list,
    write_model_tar_gz,
)
from video_recommender.engine.training import run_training_job
from video_recommender.engine.transform import run_transform_job
from video_recommender.evaluate import read_predictions

# The official FM MetricDefinitions (shared/reference/factorization-machines.md §4).
TEST_RMSE = r"#quality_metric: host=\S+, test rmse <loss>=(\S+)"
THROUGHPUT = r"#throughput_metric: host=\S+, train throughput=(\S+) records/second"


def run(request: dict) -> tuple[dict, list[str]]:
    lines: list[str] = []
    return run_training_job(request, Path, emit=lines.append), lines


def test_training_learns_and_prints_fm_metric_lines(job_dir: Path) -> None:
    describe, lines = run(training_request(job_dir))
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    epochs = [float(m.group(1)) for line in lines if (m := re.fullmatch(TRAIN_RMSE_EPOCH, line))]
    assert len(epochs) == 15 and epochs[-1] < epochs[0]
    assert sum(bool(re.fullmatch(THROUGHPUT, line)) for line in lines) == 15
    test_rmse = [float(m.group(1)) for line in lines if (m := re.fullmatch(TEST_RMSE, line))]
    assert len(test_rmse) == 1
    labels = np.load(job_dir / "test_labels.npy")
    naive = float(np.sqrt(np.mean((labels - labels.mean()) ** 2)))
    assert test_rmse[0] < 0.6 * naive  # the planted structure is found
    assert describe["FinalMetricDataList"][0]["MetricName"] == "test:rmse"
    assert describe["FinalMetricDataList"][0]["Value"] == pytest.approx(test_rmse[0])
    artifact = job_dir / "models" / "fm-test-job" / "output" / "model.tar.gz"
    assert describe["ModelArtifacts"]["S3ModelArtifacts"] == str(artifact) and artifact.exists()


def test_learning_rates_are_honoured(job_dir: Path) -> None:
    frozen, _ = run(training_request(job_dir, bias_lr="0", linear_lr="0", factors_lr="0", epochs="2"))
    model = read_model_tar_gz(Path(frozen["ModelArtifacts"]["S3ModelArtifacts"]).read_bytes())
    assert np.all(np.abs(model.w) < 0.1) and abs(float(model.w0[0])) < 0.1  # still at the N(0, 0.01) init


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {
                "HyperParameters": {
                    "feature_dim": "500",
                    "num_factors": "8",
                    "predictor_type": "regressor",
                    "epochs": "-1",
                }
            },
            "'epochs'",
        ),
        (
            {"HyperParameters": {"feature_dim": "499", "num_factors": "8", "predictor_type": "regressor"}},
            "feature dimension 500",
        ),
        ({"InputDataConfig": []}, "channels 'train' (required)"),
    ],
)
def test_bad_requests_fail_with_a_reason(job_dir: Path, change: dict, reason: str) -> None:
    describe, _ = run({**training_request(job_dir), **change})
    assert describe["TrainingJobStatus"] == "Failed"
    assert reason in describe["FailureReason"]
    assert not (job_dir / "models").exists()  # nothing half-written


def test_missing_channel_data_fails(job_dir: Path) -> None:
    request = training_request(job_dir)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = str(job_dir / "nowhere")
    describe, _ = run(request)
    assert describe["TrainingJobStatus"] == "Failed" and "no data found" in describe["FailureReason"]


def test_model_artifact_layout_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    model = FMModel(
        np.array([3.5], np.float32), rng.normal(size=7).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
    )
    data = write_model_tar_gz(model)
    assert data == write_model_tar_gz(model)  # deterministic bytes
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getnames() == ["model_algo-1"]
        inner = tar.extractfile("model_algo-1").read()
    with zipfile.ZipFile(io.BytesIO(inner)) as zf:
        assert sorted(zf.namelist()) == ["params", "symbol.json"]
        params = zf.read("params")
        symbol = json.loads(zf.read("symbol.json"))
    assert params[:8] == bytes.fromhex("1201000000000000")  # MXNet NDArray-list magic 0x112
    arrays = load_ndarray_list(params)
    assert {k: v.shape for k, v in arrays.items()} == {"arg:w0_weight": (1,), "arg:w1_weight": (7, 1), "arg:v": (7, 3)}
    assert {"w0_weight", "w1_weight", "v", "data"} <= {n["name"] for n in symbol["nodes"]}
    back = read_model_tar_gz(data)
    np.testing.assert_array_equal(back.v, model.v)
    np.testing.assert_array_equal(back.w, model.w)
    assert back.w0[0] == np.float32(3.5) and back.predictor_type == "regressor"


def test_ndarray_list_bytes_by_hand() -> None:
    data = save_ndarray_list({"a": np.array([1.0], np.float32)})
    expected = (
        bytes.fromhex("120100000000000000000000000000000100000000000000")  # magic, reserved, 1 array
        + bytes.fromhex("c9fa93f900000000010000000100000000000000")  # V2 magic, dense, ndim 1, dim 1
        + bytes.fromhex("0100000000000000000000000000803f")  # cpu, dev 0, float32, 1.0
        + bytes.fromhex("01000000000000000100000000000000")
        + b"a"  # 1 name, length 1, "a"
    )
    assert data == expected


def test_corrupt_artifacts_are_rejected() -> None:
    with pytest.raises(ModelArtifactError, match="not an FM model archive"):
        read_model_tar_gz(b"not a tarball", source="s3://b/model.tar.gz")
    with pytest.raises(ModelArtifactError, match="not an MXNet NDArray list"):
        load_ndarray_list(b"\x00" * 24)


def test_transform_writes_one_json_line_per_record_in_order(job_dir: Path) -> None:
    describe, lines = run(training_request(job_dir, epochs="3"))
    model_url = describe["ModelArtifacts"]["S3ModelArtifacts"]
    result = run_transform_job(transform_config(job_dir, model_url), Path, emit=lines.append)
    assert result["Transform"]["TransformJobStatus"] == "Completed"
    out = job_dir / "out" / "test.protobuf.out"
    text = out.read_text().splitlines()
    assert len(text) == 6_000 and all(set(json.loads(t)) == {"score"} for t in text)
    scores = read_predictions(out.read_bytes(), str(out))
    # Same scores, same order as scoring the model directly.
    from video_recommender.data.recordio import read_sparse
    from video_recommender.engine.training import score

    rows, _ = read_sparse((job_dir / "test" / "test.protobuf").read_bytes())
    direct = score(read_model_tar_gz(Path(model_url).read_bytes()), rows)
    np.testing.assert_allclose(scores, direct, rtol=0, atol=6e-8)  # 7 decimals written
    test_rmse = float(re.search(TEST_RMSE, "\n".join(lines)).group(1))
    labels = np.load(job_dir / "test_labels.npy")
    assert float(np.sqrt(np.mean((scores - labels) ** 2))) == pytest.approx(test_rmse, rel=1e-5)


def test_transform_json_accept_and_failures(job_dir: Path) -> None:
    describe, _ = run(training_request(job_dir, epochs="1"))
    model_url = describe["ModelArtifacts"]["S3ModelArtifacts"]
    run_transform_job(transform_config(job_dir, model_url, accept="application/json"), Path, emit=print)
    body = json.loads((job_dir / "out" / "test.protobuf.out").read_text())
    assert len(body["predictions"]) == 6_000
    bad = run_transform_job(transform_config(job_dir, str(job_dir / "missing.tar.gz")), Path, emit=print)
    assert (
        bad["Transform"]["TransformJobStatus"] == "Failed"
        and "cannot load the model" in bad["Transform"]["FailureReason"]
    )
    csv = transform_config(job_dir, model_url, accept="text/csv")
    assert (
        "Accept 'text/csv' is not supported" in run_transform_job(csv, Path, emit=print)["Transform"]["FailureReason"]
    )
