"""The workflow's data steps as plain functions over path objects (no Airflow import).

Each step reads what the previous one wrote under the run folder (``layout.RunPaths``)
and returns a small JSON-able summary (the task's XCom).
"""

from __future__ import annotations

import io
import itertools
import json
import logging

import numpy as np
import pandas as pd

from video_recommender.data import synthetic
from video_recommender.data.preprocess import preprocess
from video_recommender.data.recordio import SparseRows, encode_sparse
from video_recommender.data.reviews import read_reviews
from video_recommender.layout import RunPaths
from video_recommender.storage import PathLike, open_atomically, uri, write_atomically

log = logging.getLogger(__name__)
TEST_RECORDS_PER_FILE = 10_000
LIKE_THRESHOLD = 4  # binary_classifier label: 1 when star_rating >= 4 ("liked"), else 0
PREDICTOR_TYPES = ("regressor", "binary_classifier")


def _write_parquet(path: PathLike, frame: pd.DataFrame) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    write_atomically(path, buf.getvalue())


def _read_parquet(path: PathLike) -> pd.DataFrame:
    with path.open("rb") as fh:
        return pd.read_parquet(io.BytesIO(fh.read()))


def _write_json(path: PathLike, data: dict) -> None:
    write_atomically(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def generate_input(run: RunPaths, scale: float, seed: int) -> dict:
    """Write the embedded default input (synthetic reviews) for this run."""
    table, summary = synthetic.generate_table(scale=scale, seed=seed)
    with open_atomically(run.input) as fh:
        synthetic.write_reviews_tsv_gz(table, fh)
    del table
    log.info("generated %d synthetic reviews (scale %s, seed %d) at %s", summary.reviews, scale, seed, run.input)
    return {
        "reviews": summary.reviews,
        "customers": summary.customers,
        "videos": summary.videos,
        "oracle_rmse": summary.oracle_rmse,
        "scale": scale,
        "seed": seed,
    }


def preprocess_step(input_path: PathLike, run: RunPaths, seed: int = 42) -> dict:
    """Read reviews from ``input_path``, filter/dedupe/index/split, write the splits as Parquet."""
    source = uri(input_path)
    if not input_path.exists():
        raise FileNotFoundError(f"{source}: input file not found")
    with input_path.open("rb") as fh:
        reviews, report = read_reviews(fh, source)
    if report.lines_skipped:
        log.warning(report.summary())
    result = preprocess(reviews, source=source, seed=seed)
    for name in ("train", "validate", "test"):
        _write_parquet(run.preprocessed / f"{name}.parquet", getattr(result, name))
    _write_parquet(run.preprocessed / "customers.parquet", pd.DataFrame({"customer_id": result.customer_ids}))
    _write_parquet(run.preprocessed / "videos.parquet", pd.DataFrame({"product_id": result.video_ids}))
    summary = {
        "input": source,
        "read": report.as_dict(),
        "counts": result.counts,
        "n_customers": result.n_customers,
        "n_videos": result.n_videos,
        "feature_dim": result.feature_dim,
        "train_mean_rating": float(result.train["star_rating"].mean()),
        "train_like_rate": float((result.train["star_rating"] >= LIKE_THRESHOLD).mean()),
    }
    _write_json(run.preprocessed / "summary.json", summary)
    return summary


def one_hot_rows(frame: pd.DataFrame, n_customers: int, feature_dim: int) -> SparseRows:
    """Row i: a 1 at its customer's column and at ``n_customers + video index``."""
    n = len(frame)
    cols = np.empty(2 * n, dtype=np.int64)
    cols[0::2] = frame["customer_index"].to_numpy()
    cols[1::2] = n_customers + frame["video_index"].to_numpy()
    return SparseRows(np.arange(0, 2 * n + 1, 2, dtype=np.int64), cols, np.ones(2 * n, dtype=np.float32), feature_dim)


def labels_for(ratings: np.ndarray, predictor_type: str) -> np.ndarray:
    """float32 labels: the star rating (regressor) or 1.0 for a rating >= 4, else 0.0 (binary_classifier)."""
    if predictor_type not in PREDICTOR_TYPES:
        raise ValueError(f"predictor_type {predictor_type!r}: expected one of {', '.join(PREDICTOR_TYPES)}")
    ratings = np.asarray(ratings, dtype=np.float32)
    return (ratings >= LIKE_THRESHOLD).astype(np.float32) if predictor_type == "binary_classifier" else ratings


def shard_bounds(n_rows: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous, near-equal row ranges (fewer when there are fewer rows)."""
    shards = max(1, min(shards, n_rows))
    edges = [n_rows * i // shards for i in range(shards + 1)]
    return list(itertools.pairwise(edges))


def prepare_step(run: RunPaths, predictor_type: str = "regressor", shards: int = 1) -> dict:
    """Turn the splits into one-hot RecordIO-protobuf: train and validate in ``shards`` files, test in chunks.

    FM spreads training over instances by ``ShardedByS3Key``: each instance gets whole
    objects, so one file keeps all but one instance idle. The shards are contiguous
    slices named in order (``train_00000.protobuf`` ...), so one instance reading them in
    key order, as S3 lists them, sees exactly the rows of a single file.
    """
    with (run.preprocessed / "summary.json").open("r") as fh:
        pre = json.load(fh)
    n_customers, feature_dim = pre["n_customers"], pre["feature_dim"]
    written: dict[str, list[str]] = {}
    for name in ("train", "validate", "test"):
        frame = _read_parquet(run.preprocessed / f"{name}.parquet")
        rows = one_hot_rows(frame, n_customers, feature_dim)
        labels = labels_for(frame["star_rating"].to_numpy(), predictor_type)
        folder = run.recordio / name
        if name == "test":
            starts = range(0, max(rows.n_rows, 1), TEST_RECORDS_PER_FILE)
            parts = [
                (f"test_{i:05d}.protobuf", s, min(s + TEST_RECORDS_PER_FILE, rows.n_rows)) for i, s in enumerate(starts)
            ]
        else:
            parts = [
                (f"{name}_{i:05d}.protobuf", lo, hi) for i, (lo, hi) in enumerate(shard_bounds(rows.n_rows, shards))
            ]
        written[name] = []
        for filename, lo, hi in parts:
            write_atomically(folder / filename, encode_sparse(rows.slice_rows(lo, hi), labels[lo:hi]))
            written[name].append(filename)
        log.info("%s: %d records in %d RecordIO file(s) under %s", name, rows.n_rows, len(parts), folder)
    summary = {
        "feature_dim": feature_dim,
        "predictor_type": predictor_type,
        "label": "star_rating" if predictor_type == "regressor" else f"star_rating >= {LIKE_THRESHOLD}",
        "files": written,
        "rows": {k: pre["counts"][f"{k}_rows"] for k in ("train", "validate", "test")},
    }
    _write_json(run.recordio / "summary.json", summary)
    return prepared_summary(run)


def prepared_summary(run: RunPaths) -> dict:
    """What prepare wrote (recordio/summary.json) plus the channel URIs under ``run`` (the task's XCom).

    Read back after a Processing job too, where the files were written under the job's
    local folder and uploaded to the run folder.
    """
    with (run.recordio / "summary.json").open("r") as fh:
        summary = json.load(fh)
    return {
        **summary,
        "train_uri": uri(run.recordio / "train"),
        "validate_uri": uri(run.recordio / "validate"),
        "test_uri": uri(run.recordio / "test"),
    }


def preprocessed_summary(run: RunPaths) -> dict:
    """What preprocess wrote (preprocessed/summary.json)."""
    with (run.preprocessed / "summary.json").open("r") as fh:
        return json.load(fh)
