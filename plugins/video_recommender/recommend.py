"""The recommend step: every customer's top-N unrated videos, and the ranking evaluation on the test split.

It reads the trained model (``model.tar.gz``, where the training job wrote it: a local
folder or S3) and the run's splits, and writes under the run folder:

- ``recommendations/recommendations.parquet``: one row per (customer, rank) with the
  original ``customer_id``, ``product_id``, ``product_title`` and FM's predicted score;
- ``recommendations/recommendations.jsonl``: one line per customer, the same content;
- ``recommendations/ranking.json``: precision, recall, NDCG and MAP at N and catalogue
  coverage of the model, of the most-popular baseline and of random picks.

It runs on the Airflow worker on both backends: the model is a few tens of MB, the
scoring is one matrix product per block of customers with numpy (no GPU, no
container), and memory stays at the model plus one block of scores. A SageMaker
batch transform would score every (customer, video) pair of the catalogue as
RecordIO: about 6 billion records at the seed's size (141 k customers x 43 k videos).
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import time

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from video_recommender.engine.artifacts import read_model_tar_gz
from video_recommender.layout import RunPaths
from video_recommender.ranking import (
    ItemSets,
    fm_scorer,
    popularity_scorer,
    random_scorer,
    ranking_metrics,
    top_n,
)
from video_recommender.steps import LIKE_THRESHOLD  # a liked video (rating >= 4) is a relevant recommendation
from video_recommender.storage import PathLike, open_atomically, uri, write_atomically

log = logging.getLogger(__name__)

TOP_N = 10
# Ranking metrics are averaged over at most this many customers with a relevant test
# video (a seeded sample beyond it): the standard error of each mean is then below
# 0.005 (per-customer values lie in [0, 1]), and three rankings of the sample take a
# few seconds.
RANKING_CUSTOMERS = 10_000


class RecommendError(ValueError):
    """The model does not fit the run's data."""


def _split(run: RunPaths, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with (run.preprocessed / f"{name}.parquet").open("rb") as fh:
        table = pq.read_table(fh, columns=["customer_index", "video_index", "star_rating"])
    return tuple(table[c].to_numpy() for c in ("customer_index", "video_index", "star_rating"))


def _read_table(path: PathLike) -> pa.Table:
    with path.open("rb") as fh:
        return pq.read_table(fh)


def recommend_step(run: RunPaths, model_path: PathLike, n: int = TOP_N, seed: int = 42) -> dict:
    """Write every customer's ``n`` best unrated videos and the ranking evaluation; return a summary."""
    started = time.perf_counter()
    with (run.preprocessed / "summary.json").open("r") as fh:
        pre = json.load(fh)
    n_customers, n_videos = pre["n_customers"], pre["n_videos"]
    model = read_model_tar_gz(model_path.read_bytes(), source=str(model_path))
    if model.feature_dim != n_customers + n_videos:
        raise RecommendError(
            f"{model_path}: the model has feature_dim {model.feature_dim}, the run's data "
            f"{n_customers + n_videos} ({n_customers} customers + {n_videos} videos); expected the model trained on it"
        )
    splits = {name: _split(run, name) for name in ("train", "validate", "test")}
    known = ItemSets.from_pairs(
        np.concatenate([splits["train"][0], splits["validate"][0]]),
        np.concatenate([splits["train"][1], splits["validate"][1]]),
        n_customers,
    )
    rated = ItemSets.from_pairs(
        np.concatenate([s[0] for s in splits.values()]), np.concatenate([s[1] for s in splits.values()]), n_customers
    )

    scorer = fm_scorer(model, n_customers)
    videos, scores = top_n(scorer, np.arange(n_customers), rated, n)
    recommended_at = time.perf_counter()
    _write_recommendations(run, model, videos, scores, n_customers)
    written_at = time.perf_counter()

    ranking = _ranking(scorer, splits, known, n_customers, n_videos, n, seed)
    write_atomically(run.ranking, (json.dumps(ranking, indent=2, sort_keys=True) + "\n").encode())
    done = time.perf_counter()
    log.info(
        "recommended %d videos to each of %d customers in %.1f s; NDCG@%d %.4f (most popular %.4f, random %.4f)",
        n, n_customers, recommended_at - started, n,
        ranking["model"][f"ndcg_at_{n}"], ranking["most_popular"][f"ndcg_at_{n}"], ranking["random"][f"ndcg_at_{n}"],
    )  # fmt: skip
    return {
        "recommendations_uri": uri(run.recommendations / "recommendations.parquet"),
        "recommendations_jsonl_uri": uri(run.recommendations / "recommendations.jsonl"),
        "ranking_uri": uri(run.ranking),
        "customers": n_customers,
        "per_customer": n,
        "seconds": {
            "recommend": round(recommended_at - started, 2),
            "write": round(written_at - recommended_at, 2),
            "ranking": round(done - written_at, 2),
        },
        "ranking": ranking,
    }


def _write_recommendations(run: RunPaths, model, videos: np.ndarray, scores: np.ndarray, n_customers: int) -> None:
    customer_ids = _read_table(run.preprocessed / "customers.parquet")["customer_id"]
    video_table = _read_table(run.preprocessed / "videos.parquet")
    video_ids = video_table["product_id"]
    titles = video_table["product_title"] if "product_title" in video_table.column_names else None
    rows, rank = np.nonzero(videos >= 0)
    chosen = videos[rows, rank]
    # FM's prediction: the ranking score plus the customer's constant w0 + w[c]
    raw = scores[rows, rank].astype(np.float64) + float(model.w0[0]) + model.w[rows].astype(np.float64)
    predicted = 1.0 / (1.0 + np.exp(-raw)) if model.predictor_type == "binary_classifier" else raw
    table = pa.table(
        {
            "customer_id": customer_ids.take(pa.array(rows)),
            "rank": pa.array((rank + 1).astype(np.int8)),
            "product_id": video_ids.take(pa.array(chosen)),
            "product_title": titles.take(pa.array(chosen)) if titles is not None else pa.nulls(len(rows), pa.string()),
            "score": pa.array(predicted.astype(np.float32)),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    write_atomically(run.recommendations / "recommendations.parquet", buffer.getvalue())
    with open_atomically(run.recommendations / "recommendations.jsonl") as fh:
        bounds = np.searchsorted(rows, np.arange(0, n_customers + JSON_CHUNK_CUSTOMERS, JSON_CHUNK_CUSTOMERS))
        for lo, hi in itertools.pairwise(bounds.tolist()):  # whole customers per chunk (rows ascend)
            _write_json_lines(fh, table.slice(lo, hi - lo))


JSON_CHUNK_CUSTOMERS = 10_000


def _write_json_lines(fh, table: pa.Table) -> None:
    """One line per customer: {"customer_id": ..., "recommendations": [{"product_id", "product_title", "score"}, ...]}."""
    frame = pl.from_arrow(table).with_columns(pl.col("score").round(4))
    lines = frame.group_by("customer_id", maintain_order=True).agg(
        pl.struct("product_id", "product_title", "score").alias("recommendations")
    )
    lines.write_ndjson(fh)


def _ranking(model_scorer, splits: dict, known: ItemSets, n_customers: int, n_videos: int, n: int, seed: int) -> dict:
    """The model against the most-popular and random baselines, on the test split's liked videos."""
    test_customers, test_videos, test_ratings = splits["test"]
    liked = test_ratings >= LIKE_THRESHOLD
    relevant = ItemSets.from_pairs(test_customers[liked], test_videos[liked], n_customers)
    candidates = np.flatnonzero(relevant.sizes() > 0)
    with_relevant = len(candidates)
    if len(candidates) > RANKING_CUSTOMERS:
        candidates = np.sort(np.random.default_rng(seed).choice(candidates, RANKING_CUSTOMERS, replace=False))
    train_counts = np.bincount(splits["train"][1], minlength=n_videos)
    result = {
        "k": n,
        "relevant": f"test ratings >= {LIKE_THRESHOLD}",
        "excluded": "videos the customer rated in train or validate",
        "customers_with_relevant": with_relevant,
    }
    for name, scorer in (
        ("model", model_scorer),
        ("most_popular", popularity_scorer(train_counts)),
        ("random", random_scorer(n_videos, seed)),
    ):
        picks, _ = top_n(scorer, candidates, known, n)
        result[name] = {
            k: round(v, 6) if isinstance(v, float) else v
            for k, v in ranking_metrics(picks, relevant, candidates, n_videos).items()
        }
    return result
