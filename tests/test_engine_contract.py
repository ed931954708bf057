"""Each FM hyper-parameter does what the README says; classifier metrics; manifest inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from fm_jobs import TRAIN_RMSE_EPOCH, training_request, transform_config

from video_recommender.data.recordio import encode_sparse, read_sparse
from video_recommender.engine.artifacts import FMModel, read_model_tar_gz
from video_recommender.engine.training import run_training_job
from video_recommender.engine.transform import run_transform_job

# Official FM MetricDefinitions for the classifier (shared/reference/factorization-machines.md §4).
CLASSIFIER_REGEXES = {
    "test:binary_classification_accuracy": r"#quality_metric: host=\S+, test binary_classification_accuracy <score>=(\S+)",
    "test:binary_classification_cross_entropy": r"#quality_metric: host=\S+, test binary_classification_cross_entropy <loss>=(\S+)",
    "test:binary_f_beta": r"#quality_metric: host=\S+, test binary_f_1.000 <score>=(\S+)",
    "train:binary_classification_cross_entropy:epoch": r"#quality_metric: host=\S+, epoch=\S+, train binary_classification_cross_entropy <loss>=(\S+)",
}


def train(job_dir: Path, **hp: str) -> tuple[dict, FMModel, list[str]]:
    lines: list[str] = []
    describe = run_training_job(training_request(job_dir, **hp), Path, lines.append)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    return describe, read_model_tar_gz(Path(describe["ModelArtifacts"]["S3ModelArtifacts"]).read_bytes()), lines


FROZEN = {
    "bias_lr": "0",
    "linear_lr": "0",
    "factors_lr": "0",
    "bias_wd": "0",
    "linear_wd": "0",
    "factors_wd": "0",
    "epochs": "1",
}


def test_init_methods_and_their_parameters(job_dir: Path) -> None:
    _, model, _ = train(
        job_dir, **FROZEN,
        bias_init_method="constant", bias_init_value="3.25",
        linear_init_method="uniform", linear_init_scale="0.5",
        factors_init_method="normal", factors_init_sigma="0.2",
    )  # fmt: skip
    assert model.w0[0] == np.float32(3.25)
    assert np.abs(model.w).max() <= 0.5 and np.abs(model.w).max() > 0.45  # U[-0.5, 0.5] over 500 weights
    assert model.v.std() == pytest.approx(0.2, rel=0.05) and abs(float(model.v.mean())) < 0.01


def test_epochs_and_learning_rates_move_the_model(job_dir: Path) -> None:
    _, frozen, lines = train(job_dir, **FROZEN, factors_init_sigma="0.05")
    assert sum(bool(re.fullmatch(TRAIN_RMSE_EPOCH, line)) for line in lines) == 1
    _, moved, lines = train(job_dir, **{**FROZEN, "factors_lr": "0.01", "epochs": "3"}, factors_init_sigma="0.05")
    assert sum(bool(re.fullmatch(TRAIN_RMSE_EPOCH, line)) for line in lines) == 3
    np.testing.assert_array_equal(moved.w, frozen.w)  # linear_lr=0: untouched
    assert moved.w0[0] == frozen.w0[0]
    assert not np.array_equal(moved.v, frozen.v)


def test_batch_metric_lines_follow_the_publish_interval(job_dir: Path) -> None:
    batch_line = r"#quality_metric: host=algo-1, epoch=0, batch=(\d+) train rmse <loss>=\S+"
    for interval, batches in (("500", ["0"]), ("100", ["0", "100", "200"])):  # 240 mini-batches of 100
        _, _, lines = train(job_dir, **FROZEN, batch_metrics_publish_interval=interval)
        assert [m.group(1) for line in lines if (m := re.fullmatch(batch_line, line))] == batches


def test_weight_decay_alone_shrinks_weights(job_dir: Path) -> None:
    # A vanishing rescale_grad removes the data's gradient: only weight decay acts.
    _, start, _ = train(job_dir, **FROZEN, linear_init_sigma="0.1")
    _, shrunk, _ = train(
        job_dir, **{**FROZEN, "linear_lr": "0.0002", "linear_wd": "0.01"}, rescale_grad="1e-9", linear_init_sigma="0.1"
    )
    large = np.abs(start.w) > 0.05  # Adam moves each value about lr per update: these cannot cross zero
    assert np.all(np.abs(shrunk.w[large]) < np.abs(start.w[large]))
    assert np.all(np.sign(shrunk.w[large]) == np.sign(start.w[large]))


def test_mini_batch_size_sets_the_default_rescale(job_dir: Path) -> None:
    base = {"epochs": "2", "factors_lr": "0.01", "linear_lr": "0.01", "factors_wd": "0.001"}
    _, small, _ = train(job_dir, **base, mini_batch_size="50")
    _, explicit, _ = train(job_dir, **base, mini_batch_size="50", rescale_grad=str(1 / 50))
    _, large, _ = train(job_dir, **base, mini_batch_size="1000")
    np.testing.assert_allclose(small.v, explicit.v, atol=1e-6)  # default rescale_grad = 1/mini_batch_size
    assert np.abs(small.v - large.v).max() > 1e-2


def test_eps_is_validated(job_dir: Path) -> None:
    failed = run_training_job(training_request(job_dir, eps="-1"), Path, lambda _: None)
    assert failed["TrainingJobStatus"] == "Failed" and "'eps'" in failed["FailureReason"]


def binarise(job_dir: Path) -> None:
    for split in ("train", "test"):
        path = job_dir / split / f"{split}.protobuf"
        rows, y = read_sparse(path.read_bytes())
        path.write_bytes(encode_sparse(rows, (y >= np.median(y)).astype(np.float32)))


def test_classifier_prints_fm_metrics_and_transform_labels(job_dir: Path) -> None:
    binarise(job_dir)
    describe, model, lines = train(job_dir, predictor_type="binary_classifier", epochs="8")
    text = "\n".join(lines)
    for name, pattern in CLASSIFIER_REGEXES.items():
        assert re.search(pattern, text), name
    accuracy = float(re.search(CLASSIFIER_REGEXES["test:binary_classification_accuracy"], text).group(1))
    assert accuracy > 0.8  # the planted structure separates the halves well
    assert {m["MetricName"] for m in describe["FinalMetricDataList"]} == {
        "test:binary_classification_accuracy", "test:binary_classification_cross_entropy", "test:binary_f_beta"
    }  # fmt: skip
    assert model.predictor_type == "binary_classifier"
    config = transform_config(job_dir, describe["ModelArtifacts"]["S3ModelArtifacts"])
    assert run_transform_job(config, Path, print)["Transform"]["TransformJobStatus"] == "Completed"
    records = [json.loads(line) for line in (job_dir / "out" / "test.protobuf.out").read_text().splitlines()]
    assert len(records) == 6_000
    assert all(r["predicted_label"] == int(r["score"] >= 0.5) and 0 <= r["score"] <= 1 for r in records)


def test_classifier_rejects_non_binary_labels(job_dir: Path) -> None:
    failed = run_training_job(training_request(job_dir, predictor_type="binary_classifier"), Path, lambda _: None)
    assert failed["TrainingJobStatus"] == "Failed" and "labels 0 or 1" in failed["FailureReason"]


def test_manifest_inputs_for_training_and_transform(job_dir: Path) -> None:
    manifest = job_dir / "test.manifest"
    manifest.write_text(json.dumps([{"prefix": str(job_dir / "test") + "/"}, "test.protobuf"]))
    request = training_request(job_dir, epochs="2")
    request["InputDataConfig"][1]["DataSource"]["S3DataSource"] = {"S3DataType": "ManifestFile", "S3Uri": str(manifest)}
    describe = run_training_job(request, Path, lambda _: None)
    assert describe["TrainingJobStatus"] == "Completed" and describe["FinalMetricDataList"]
    config = transform_config(
        job_dir,
        describe["ModelArtifacts"]["S3ModelArtifacts"],
        source={"S3DataType": "ManifestFile", "S3Uri": str(manifest)},
    )
    assert run_transform_job(config, Path, print)["Transform"]["TransformJobStatus"] == "Completed"
    assert len((job_dir / "out" / "test.protobuf.out").read_text().splitlines()) == 6_000
    manifest.write_text("{not json")
    bad = run_transform_job(config, Path, print)["Transform"]
    assert bad["TransformJobStatus"] == "Failed" and "is not a manifest" in bad["FailureReason"]


@pytest.mark.parametrize("group", ["bias", "linear", "factors"])
@pytest.mark.parametrize("method", ["constant", "uniform", "normal"])
def test_every_group_honours_every_init_method(job_dir: Path, group: str, method: str) -> None:
    settings = {"constant": {"value": "0.75"}, "uniform": {"scale": "0.3"}, "normal": {"sigma": "0.2"}}[method]
    hp = {f"{group}_init_method": method, **{f"{group}_init_{k}": v for k, v in settings.items()}}
    _, model, _ = train(job_dir, **FROZEN, **hp)
    values = {"bias": model.w0, "linear": model.w, "factors": model.v}[group].ravel()
    if method == "constant":
        assert np.all(values == np.float32(0.75))
    elif method == "uniform":
        assert np.abs(values).max() <= 0.3 and (len(values) == 1 or values.std() > 0.05)
    else:
        assert len(values) == 1 or values.std() == pytest.approx(0.2, rel=0.15)


@pytest.mark.parametrize("group", ["bias", "linear", "factors"])
def test_every_group_honours_its_learning_rate_and_weight_decay(job_dir: Path, group: str) -> None:
    init = {"bias_init_method": "constant", "bias_init_value": "1.0", f"{group}_init_sigma": "0.1"}
    _, start, _ = train(job_dir, **FROZEN, **init)
    # Only this group learns, with the data's gradient switched off: weight decay alone shrinks it.
    hp = {**FROZEN, f"{group}_lr": "0.0005", f"{group}_wd": "0.001", "rescale_grad": "0.000000001"}
    _, decayed, _ = train(job_dir, **hp, **init)
    pick = {"bias": lambda m: m.w0, "linear": lambda m: m.w, "factors": lambda m: m.v}
    for other, get in pick.items():
        if other == group:
            assert np.abs(get(decayed)).sum() < np.abs(get(start)).sum()
        else:
            np.testing.assert_array_equal(get(decayed), get(start))
