"""Local FM engine speed at the generator's full scale, next to real SageMaker FM (measured figures).

About 1 million one-hot training rows, about 179 thousand features, num_factors=64,
mini_batch_size=1000, FM's default rates (real FM's optimiser: lazy Adam): samples per
second per epoch (compilation excluded: the kernels are cached after the first run),
the time of 10 epochs, and scoring (batch transform kernel) rows/s. The anchor is the
throughput real FM logged for run A (shared/reference/fm-real-optimizer.md).

    .venv/bin/python benchmarks/fm_engine_speed.py [--rows 1000000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from video_recommender.data.recordio import SparseRows, encode_sparse
from video_recommender.engine.artifacts import read_model_tar_gz, write_model_tar_gz
from video_recommender.engine.hyperparameters import parse_hyperparameters
from video_recommender.engine.training import score, train_model
from video_recommender.engine.transform import run_transform_job

REAL_FM_RECORDS_PER_SECOND = 229_405.3  # run A's #throughput_metric, ml.c4.xlarge (4 vCPU), MovieLens-100K


def one_hot_data(n: int, customers: int, videos: int, seed: int = 0) -> tuple[SparseRows, np.ndarray]:
    """Uniform customers, power-law video popularity (as after the workflow's filters)."""
    rng = np.random.default_rng(seed)
    popularity = np.arange(1, videos + 1, dtype=np.float64) ** -1.0
    cols = np.empty(2 * n, dtype=np.int64)
    cols[0::2] = rng.integers(0, customers, n)
    cols[1::2] = customers + rng.choice(videos, n, p=popularity / popularity.sum())
    rows = SparseRows(np.arange(0, 2 * n + 1, 2), cols, np.ones(2 * n, np.float32), customers + videos)
    return rows, rng.integers(1, 6, n).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=140_000)
    parser.add_argument("--videos", type=int, default=39_000)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    rows, y = one_hot_data(args.rows, args.customers, args.videos)
    hp = parse_hyperparameters(
        {"feature_dim": str(rows.n_cols), "num_factors": "64", "predictor_type": "regressor",
         "epochs": str(args.epochs), "mini_batch_size": "1000"}
    )  # fmt: skip
    train_model(rows.slice_rows(0, 1000), y[:1000], {**hp, "epochs": 1}, emit=lambda _: None)  # load / compile

    lines: list[str] = []
    start = time.perf_counter()
    model, _ = train_model(rows, y, hp, emit=lines.append)
    total = time.perf_counter() - start
    rates = [float(line.split("=")[-1].split()[0]) for line in lines if line.startswith("#throughput_metric")]
    score(model, rows.slice_rows(0, 1000))
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        score(model, rows)
        timings.append(time.perf_counter() - start)
    scoring = args.rows / float(np.median(timings))

    import numba

    print(f"{args.rows} rows, feature_dim {rows.n_cols}, num_factors 64, {args.epochs} epochs, mini_batch_size 1000, "
          f"{numba.get_num_threads()} threads")  # fmt: skip
    print(
        f"training samples/s per epoch: median {np.median(rates) / 1e6:.2f} M, min {min(rates) / 1e6:.2f} M, "
        f"max {max(rates) / 1e6:.2f} M  |  real FM, run A: {REAL_FM_RECORDS_PER_SECOND / 1e6:.2f} M records/s "
        f"(ml.c4.xlarge): {np.median(rates) / REAL_FM_RECORDS_PER_SECOND:.0f}x"
    )
    print(f"train_model wall time, {args.epochs} epochs (incl. grouping the mini-batches once): {total:.2f} s")
    print(f"scoring (batch transform kernel, median of 7): {scoring / 1e6:.1f} M rows/s")
    job_rate, steady = transform_job_rate(model, rows, y)
    print(f"batch transform job, 10 RecordIO objects of {args.rows // 10} rows -> .out JSON lines: "
          f"{job_rate / 1e6:.1f} M rows/s including the model load, {steady / 1e6:.1f} M rows/s without it")  # fmt: skip


def transform_job_rate(model, rows: SparseRows, y: np.ndarray) -> tuple[float, float]:
    """Rows/s of a whole CreateTransformJob run (read, decode, score, format, write)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "test").mkdir()
        step = rows.n_rows // 10
        for i in range(10):
            part = rows.slice_rows(i * step, (i + 1) * step)
            (base / "test" / f"test_{i:05d}.protobuf").write_bytes(encode_sparse(part, y[i * step : (i + 1) * step]))
        (base / "model.tar.gz").write_bytes(write_model_tar_gz(model))
        config = {
            "Model": {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": str(base / "model.tar.gz")}},
            "Transform": {
                "TransformJobName": "bench",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{base / 'test'}/"}},
                    "ContentType": "application/x-recordio-protobuf",
                    "SplitType": "RecordIO",
                },
                "TransformOutput": {
                    "S3OutputPath": str(base / "out"),
                    "Accept": "application/jsonlines",
                    "AssembleWith": "Line",
                },
            },
        }
        run_transform_job(config, Path, lambda _: None)  # load compiled code
        start = time.perf_counter()
        run_transform_job(config, Path, lambda _: None)
        total = time.perf_counter() - start
        start = time.perf_counter()
        read_model_tar_gz((base / "model.tar.gz").read_bytes())
        load = time.perf_counter() - start
    return 10 * step / total, 10 * step / max(total - load, 1e-9)


if __name__ == "__main__":
    main()
