"""The engine's optimiser is real FM's: compared with the plain float64 oracle (fm_reference),
and bit-for-bit repeatable whatever the thread count."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numba
import numpy as np
import pytest
from fm_jobs import training_request
from fm_reference import train_reference

from video_recommender.data.recordio import SparseRows
from video_recommender.engine.hyperparameters import parse_hyperparameters
from video_recommender.engine.training import run_training_job, train_model

TRAIN_RMSE_EPOCH = r"#quality_metric: host=algo-1, epoch=(\d+), train rmse <loss>=(\S+)"


def small_data(classifier: bool = False) -> tuple[SparseRows, np.ndarray]:
    """103 rows of 1 to 4 distinct features out of 12 (so features repeat within a mini-batch),
    values other than 1, and labels with structure to learn."""
    rng = np.random.default_rng(5)
    indptr, indices = [0], []
    for _ in range(103):
        cols = np.sort(rng.choice(12, size=rng.integers(1, 5), replace=False))
        indices += cols.tolist()
        indptr.append(len(indices))
    values = rng.uniform(0.5, 2.0, len(indices)).astype(np.float32)
    rows = SparseRows(np.array(indptr), np.array(indices, dtype=np.int32), values, 12)
    signal = np.array([values[indptr[r] : indptr[r + 1]].sum() for r in range(103)])
    y = (signal > np.median(signal)).astype(np.float32) if classifier else (1 + signal).astype(np.float32)
    return rows, y


BASE = {
    "feature_dim": "12", "num_factors": "4", "predictor_type": "regressor", "epochs": "3",
    "mini_batch_size": "10",  # 11 mini-batches, the last of 3 rows
    "bias_lr": "0.05", "linear_lr": "0.02", "factors_lr": "0.03",
    "bias_wd": "0.01", "linear_wd": "0.002", "factors_wd": "0.003", "factors_init_sigma": "0.3",
}  # fmt: skip
CASES = {
    "defaults": {},
    "clipped": {"clip_gradient": "0.002"},
    "rescale_and_eps": {"rescale_grad": "0.5", "eps": "0.01"},
    "classifier": {"predictor_type": "binary_classifier"},
}


@pytest.mark.parametrize("case", CASES)
def test_engine_trains_as_the_reference_rules(case: str) -> None:
    hp = parse_hyperparameters({**BASE, **CASES[case]})
    rows, y = small_data(classifier=hp["predictor_type"] == "binary_classifier")
    frozen = {**hp, "bias_lr": 0.0, "linear_lr": 0.0, "factors_lr": 0.0, "epochs": 1}
    start, _ = train_model(rows, y, frozen, emit=lambda _: None)  # lr 0: the initial parameters
    model, losses = train_model(rows, y, hp, emit=lambda _: None)
    w0, w, v, predictions = train_reference(rows, y, hp, start.w0, start.w, start.v)
    assert np.abs(model.v - start.v).max() > 0.05  # it trained
    np.testing.assert_allclose(model.w0, w0, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(model.w, w, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(model.v, v, rtol=2e-4, atol=1e-6)
    if hp["predictor_type"] == "regressor":  # per-epoch train rmse: predictions made before each update
        expected = [float(np.sqrt(np.mean((p - y) ** 2))) for p in predictions]
        np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_clipping_and_eps_change_the_result() -> None:
    rows, y = small_data()
    plain, _ = train_model(rows, y, parse_hyperparameters(BASE), emit=lambda _: None)
    for change in CASES["clipped"], {"eps": "0.01"}:
        other, _ = train_model(rows, y, parse_hyperparameters({**BASE, **change}), emit=lambda _: None)
        assert np.abs(other.v - plain.v).max() > 1e-3, change


def _artifact_sha256(job_dir: Path, threads: int) -> tuple[str, list[str]]:
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        lines: list[str] = []
        describe = run_training_job(training_request(job_dir, epochs="3"), Path, lines.append)
    finally:
        numba.set_num_threads(before)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    data = Path(describe["ModelArtifacts"]["S3ModelArtifacts"]).read_bytes()
    return hashlib.sha256(data).hexdigest(), [
        m.group(2) for line in lines if (m := re.fullmatch(TRAIN_RMSE_EPOCH, line))
    ]


def test_runs_are_byte_identical_whatever_the_thread_count(job_dir: Path) -> None:
    first, first_losses = _artifact_sha256(job_dir, numba.config.NUMBA_NUM_THREADS)
    again, again_losses = _artifact_sha256(job_dir, numba.config.NUMBA_NUM_THREADS)
    one_thread, one_losses = _artifact_sha256(job_dir, 1)
    assert first == again == one_thread
    assert first_losses == again_losses == one_losses and len(first_losses) == 3


def test_features_absent_from_a_mini_batch_are_left_alone() -> None:
    # Lazy updates: a feature that never occurs keeps its initial value, weight decay included.
    rows, y = small_data()
    rows = SparseRows(rows.indptr, rows.indices, rows.values, 14)  # features 12 and 13 never occur
    hp = parse_hyperparameters({**BASE, "feature_dim": "14", "linear_wd": "0.5", "factors_wd": "0.5"})
    start, _ = train_model(rows, y, {**hp, "linear_lr": 0.0, "factors_lr": 0.0}, emit=lambda _: None)
    model, _ = train_model(rows, y, hp, emit=lambda _: None)
    np.testing.assert_array_equal(model.w[12:], start.w[12:])
    np.testing.assert_array_equal(model.v[12:], start.v[12:])
    assert np.all(model.w[:12] != start.w[:12])
