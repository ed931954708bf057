"""Shared helpers for engine tests: a learnable one-hot data set and a training request."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from video_recommender.data.recordio import SparseRows, encode_sparse

# The official FM MetricDefinition train:rmse:epoch (shared/reference/factorization-machines.md §4).
TRAIN_RMSE_EPOCH = r"#quality_metric: host=\S+, epoch=\S+, train rmse <loss>=(\S+)"


def planted_fm(n_rows: int, n_customers: int, n_videos: int, seed: int) -> tuple[SparseRows, np.ndarray]:
    """One-hot rows whose labels follow a rank-2 FM: learnable, with a known best RMSE of 0.1."""
    rng = np.random.default_rng(seed)
    cu = rng.integers(0, n_customers, n_rows)
    vi = rng.integers(0, n_videos, n_rows)
    u, v = rng.normal(size=(n_customers, 2)), rng.normal(size=(n_videos, 2))
    y = 3.0 + 0.5 * rng.normal(size=n_customers)[cu] + np.einsum("ij,ij->i", u[cu], v[vi]) + rng.normal(0, 0.1, n_rows)
    cols = np.stack([cu, n_customers + vi], 1).ravel()
    return SparseRows(
        np.arange(0, 2 * n_rows + 1, 2), cols, np.ones(2 * n_rows, np.float32), n_customers + n_videos
    ), y.astype(np.float32)


def write_job_dir(tmp_path: Path) -> Path:
    """train/ and test/ RecordIO channels of a planted FM (24,000 / 6,000 rows) and the test labels."""
    rows, y = planted_fm(30_000, 300, 200, seed=1)
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    (tmp_path / "train" / "train.protobuf").write_bytes(encode_sparse(rows.slice_rows(0, 24_000), y[:24_000]))
    (tmp_path / "test" / "test.protobuf").write_bytes(encode_sparse(rows.slice_rows(24_000, 30_000), y[24_000:]))
    np.save(tmp_path / "test_labels.npy", y[24_000:])
    return tmp_path


def training_request(base: Path, **hp: str) -> dict:
    def channel(name: str) -> dict:
        return {
            "ChannelName": name,
            "ContentType": "application/x-recordio-protobuf",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{base / name}/"}},
        }

    return {
        "TrainingJobName": "fm-test-job",
        "HyperParameters": {
            "feature_dim": "500",
            "num_factors": "8",
            "predictor_type": "regressor",
            "epochs": "15",
            "mini_batch_size": "100",
            # Adam step sizes (real FM's optimiser): each touched value moves about lr per update.
            "bias_lr": "0.1",
            "linear_lr": "0.01",
            "factors_lr": "0.01",
            "linear_wd": "0.0001",
            "factors_wd": "0.0001",
            "factors_init_sigma": "0.05",
            **hp,
        },
        "InputDataConfig": [channel("train"), channel("test")],
        "OutputDataConfig": {"S3OutputPath": str(base / "models")},
    }


def transform_config(
    base: Path, model_url: str, accept: str = "application/jsonlines", source: dict | None = None
) -> dict:
    """``{"Model", "Transform"}`` scoring ``base/test`` (or ``source``) into ``base/out``."""
    return {
        "Model": {"ModelName": "m", "PrimaryContainer": {"Image": "fm", "ModelDataUrl": model_url}},
        "Transform": {
            "TransformJobName": "t",
            "ModelName": "m",
            "TransformInput": {
                "DataSource": {"S3DataSource": source or {"S3DataType": "S3Prefix", "S3Uri": f"{base / 'test'}/"}},
                "ContentType": "application/x-recordio-protobuf",
                "SplitType": "RecordIO",
            },
            "TransformOutput": {"S3OutputPath": str(base / "out"), "Accept": accept, "AssembleWith": "Line"},
        },
    }
