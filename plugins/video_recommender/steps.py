"""The workflow's data steps as plain functions over path objects (no Airflow import).

Each step reads what the previous one wrote under the run folder (``layout.RunPaths``)
and returns a small JSON-able summary (the task's XCom).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from video_recommender.data import synthetic
from video_recommender.data.preprocess import CHUNK_ROWS, SPLIT_NAMES, preprocess_blocks
from video_recommender.data.recordio import SparseRows, encode_sparse
from video_recommender.data.reviews import ReviewReader
from video_recommender.layout import RunPaths
from video_recommender.storage import PathLike, open_atomically, uri, write_atomically

log = logging.getLogger(__name__)
TEST_RECORDS_PER_FILE = 10_000
LIKE_THRESHOLD = 4  # binary_classifier label: 1 when star_rating >= 4 ("liked"), else 0
PREDICTOR_TYPES = ("regressor", "binary_classifier")


def _write_parquet_chunks(path: PathLike, chunks: Iterator[pd.DataFrame]) -> None:
    """DataFrames with the same columns as one Parquet file, a row group per chunk."""
    with open_atomically(path) as fh:
        writer = None
        for frame in chunks:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(fh, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()


def _write_table(path: PathLike, table: pa.Table) -> None:
    with open_atomically(path) as fh:
        pq.write_table(table, fh)


def _iter_parquet(path: PathLike) -> Iterator[pd.DataFrame]:
    """A Parquet file's rows in order, ``CHUNK_ROWS`` at a time."""
    with path.open("rb") as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=CHUNK_ROWS):
            yield batch.to_pandas()


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
    """Read reviews from ``input_path``, filter/dedupe/index/split, write the splits as Parquet.

    Streamed end to end (``ReviewReader`` blocks into ``preprocess_blocks``, the splits
    out in chunks), so memory does not grow with the rows read.
    """
    source = uri(input_path)
    if not input_path.exists():
        raise FileNotFoundError(f"{source}: input file not found")
    with input_path.open("rb") as fh:
        reader = ReviewReader(fh, source)
        result = preprocess_blocks(reader.frames(), source=source, seed=seed)
    report = reader.report
    if report.lines_skipped:
        log.warning(report.summary())
    for name in SPLIT_NAMES:
        _write_parquet_chunks(run.preprocessed / f"{name}.parquet", result.iter_split(name, CHUNK_ROWS))
    _write_table(run.preprocessed / "customers.parquet", pa.table({"customer_id": result.customer_ids}))
    videos = {"product_id": result.video_ids}
    if result.video_titles is not None:
        videos["product_title"] = result.video_titles
    _write_table(run.preprocessed / "videos.parquet", pa.table(videos))
    mean_rating, like_rate = result.train_rating_stats(LIKE_THRESHOLD)
    summary = {
        "input": source,
        "read": report.as_dict(),
        "counts": result.counts,
        "n_customers": result.n_customers,
        "n_videos": result.n_videos,
        "feature_dim": result.feature_dim,
        "train_mean_rating": mean_rating,
        "train_like_rate": like_rate,
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
        n_rows = pre["counts"][f"{name}_rows"]
        if name == "test":
            bounds = [
                (lo, min(lo + TEST_RECORDS_PER_FILE, n_rows)) for lo in range(0, max(n_rows, 1), TEST_RECORDS_PER_FILE)
            ]
        else:
            bounds = shard_bounds(n_rows, shards)
        parts = [(f"{name}_{i:05d}.protobuf", hi - lo) for i, (lo, hi) in enumerate(bounds)]
        folder = run.recordio / name
        chunks = _iter_parquet(run.preprocessed / f"{name}.parquet")
        pending = pd.DataFrame()
        for filename, size in parts:
            # Chunks of the split stream across file boundaries; RecordIO records stand
            # alone, so a file written chunk by chunk has the bytes of one written at once.
            with open_atomically(folder / filename) as fh:
                left = size
                while left > 0:
                    if pending.empty:
                        pending = next(chunks)
                    piece, pending = pending.iloc[:left], pending.iloc[left:]
                    labels = labels_for(piece["star_rating"].to_numpy(), predictor_type)
                    fh.write(encode_sparse(one_hot_rows(piece, n_customers, feature_dim), labels))
                    left -= len(piece)
        written[name] = [filename for filename, _ in parts]
        log.info("%s: %d records in %d RecordIO file(s) under %s", name, n_rows, len(parts), folder)
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
