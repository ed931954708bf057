"""Our FM engine against PyTorch and myfm on the same split, in one run (measured figures).

Data: MovieLens 100K in the reviews schema (benchmarks/movielens.py, real public
ratings) by default, or any reviews file. The workflow's own pre-processing makes
the split (filters, dedupe, 60/20/20); every model trains on train, may use
validate, and is scored on test. Our engine runs with the DAG's default
hyper-parameters. The baselines run in .venv-bench (requirements/bench.txt), which
this script creates on first use.

    .venv/bin/python benchmarks/compare_fm.py [--input reviews.tsv.gz] [--models torch,myfm]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "benchmarks"))

from video_recommender.data.preprocess import preprocess  # ruff: ignore[module-import-not-at-top-of-file]
from video_recommender.data.reviews import read_reviews  # ruff: ignore[module-import-not-at-top-of-file]
from video_recommender.engine.hyperparameters import parse_hyperparameters  # ruff: ignore[module-import-not-at-top-of-file]
from video_recommender.engine.training import score, train_model  # ruff: ignore[module-import-not-at-top-of-file]
from video_recommender.settings import DEFAULT_HYPERPARAMETERS  # ruff: ignore[module-import-not-at-top-of-file]
from video_recommender.steps import one_hot_rows  # ruff: ignore[module-import-not-at-top-of-file]

BENCH_VENV = REPO / ".venv-bench"


def bench_python() -> Path:
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        base = next((p for p in ("python3.11", "/root/.pyenv/versions/3.11.7/bin/python3.11") if _runs(p)), None)
        if base is None:
            raise SystemExit("the baselines need Python 3.11 (PyTorch's CPU wheel on this machine is for 3.11)")
        subprocess.run([base, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(REPO / "requirements" / "bench.txt")], check=True
        )
    return python


def _runs(python: str) -> bool:
    return (
        subprocess.run(
            [python, "-c", "import sys; assert sys.version_info[:2] == (3, 11)"], capture_output=True
        ).returncode
        == 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None, help="reviews file (default: MovieLens 100K)")
    parser.add_argument("--models", default="torch,myfm")
    parser.add_argument("--repeats", type=int, default=3, help="runs of our engine (median RMSE reported)")
    args = parser.parse_args()
    if args.input is None:
        import movielens

        args.input = REPO / ".cache" / "movielens-100k.tsv.gz"
        if not args.input.exists():
            args.input.parent.mkdir(parents=True, exist_ok=True)
            args.input.write_bytes(movielens.to_reviews_tsv_gz(movielens.fetch_ratings(REPO / ".cache")))
    with args.input.open("rb") as fh:
        reviews, _ = read_reviews(fh, str(args.input))
    split = preprocess(reviews, source=str(args.input))
    print(
        f"data: {args.input.name}: train/validate/test {len(split.train)}/{len(split.validate)}/{len(split.test)}, feature_dim {split.feature_dim}"
    )

    rows = {
        name: one_hot_rows(getattr(split, name), split.n_customers, split.feature_dim)
        for name in ("train", "validate", "test")
    }
    labels = {name: getattr(split, name)["star_rating"].to_numpy(np.float32) for name in ("train", "validate", "test")}
    hp = parse_hyperparameters({**DEFAULT_HYPERPARAMETERS, "feature_dim": str(split.feature_dim)})
    train_model(rows["train"].slice_rows(0, 100), labels["train"][:100], {**hp, "epochs": 1}, emit=lambda _: None)
    results = []
    runs = []
    for _ in range(args.repeats):
        lines: list[str] = []
        start = time.perf_counter()
        model, _ = train_model(rows["train"], labels["train"], hp, emit=lines.append)
        seconds = time.perf_counter() - start
        rates = [float(x.split("=")[-1].split()[0]) for x in lines if x.startswith("#throughput_metric")]
        runs.append(
            (
                float(np.sqrt(np.mean((score(model, rows["test"]) - labels["test"]) ** 2))),
                float(np.median(rates)),
                seconds,
            )
        )
    runs.sort()
    rmse, rate, seconds = runs[len(runs) // 2]
    results.append({"model": f"this engine (real FM's lazy Adam, rank {hp['num_factors']}, DAG defaults, {hp['epochs']} epochs)",
                    "samples_per_second": rate, "train_seconds": seconds, "test_rmse": rmse})  # fmt: skip
    naive = float(np.sqrt(np.mean((labels["test"] - labels["train"].mean()) ** 2)))

    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "split.npz"
        arrays = {"n_customers": split.n_customers, "dim": split.feature_dim}
        for name in ("train", "validate", "test"):
            frame = getattr(split, name)
            arrays |= {
                f"c_{name}": frame["customer_index"].to_numpy(),
                f"v_{name}": frame["video_index"].to_numpy(),
                f"y_{name}": labels[name],
            }
        np.savez(npz, **arrays)
        done = subprocess.run([str(bench_python()), str(REPO / "benchmarks" / "fm_baselines.py"), str(npz), args.models],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            raise SystemExit(f"baselines failed:\n{done.stderr[-3000:]}")
        results += [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    print(f"naive (train mean) test RMSE: {naive:.4f}; our engine: median of {args.repeats} runs")
    print(f"{'model':<78}{'samples/s':>14}{'train s':>10}{'test RMSE':>11}")
    for r in results:
        print(f"{r['model']:<78}{r['samples_per_second']:>14,.0f}{r['train_seconds']:>10.2f}{r['test_rmse']:>11.4f}")


if __name__ == "__main__":
    main()
