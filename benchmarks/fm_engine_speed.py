"""Local FM engine speed at the generator's full scale (prints measured figures).

About 1 million one-hot training rows, about 179 thousand features, num_factors=64:
samples per second per epoch (compilation excluded: the kernels are cached after
the first run), the time of 10 epochs, and scoring (batch transform kernel) rows/s.

    .venv/bin/python benchmarks/fm_engine_speed.py [--rows 1000000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from video_recommender.data.recordio import SparseRows
from video_recommender.engine.hyperparameters import parse_hyperparameters
from video_recommender.engine.training import score, train_model


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
         "epochs": str(args.epochs), "mini_batch_size": "200", "linear_lr": "4", "factors_lr": "8"}
    )  # fmt: skip
    train_model(rows.slice_rows(0, 1000), y[:1000], {**hp, "epochs": 1}, emit=lambda _: None)  # load / compile

    lines: list[str] = []
    start = time.perf_counter()
    model, _ = train_model(rows, y, hp, emit=lines.append)
    total = time.perf_counter() - start
    rates = [float(line.split("=")[-1].split()[0]) for line in lines if line.startswith("#throughput_metric")]
    score(model, rows.slice_rows(0, 1000))
    start = time.perf_counter()
    score(model, rows)
    scoring = args.rows / (time.perf_counter() - start)

    print(f"{args.rows} rows, feature_dim {rows.n_cols}, num_factors 64, {args.epochs} epochs, mini_batch_size 200")
    print(
        f"training samples/s per epoch: median {np.median(rates) / 1e6:.1f} M, min {min(rates) / 1e6:.1f} M, max {max(rates) / 1e6:.1f} M"
    )
    print(f"train_model wall time, {args.epochs} epochs (incl. one physical shuffle): {total:.2f} s")
    print(f"scoring (batch transform kernel): {scoring / 1e6:.1f} M rows/s")


if __name__ == "__main__":
    main()
