"""Top-N recommendations from a Factorization Machines model, and the ranking metrics that judge them.

FM scores the one-hot row ``[customer c, video C + v]`` as
``w0 + w[c] + w[C+v] + <V[c], V[C+v]>`` (the binary classifier: the sigmoid of it,
the same order). Ranking one customer's videos needs only ``w[C+v] + <V[c], V[C+v]>``,
so a block of customers is scored against every video by one matrix product (numpy's
BLAS), the videos they rated are masked, and the best N are picked among the few
scores above a bound taken from a sample of columns. Memory is the model plus a few
copies of one block of ``block_rows x videos`` float32 scores (256 x 43 k: 44 MB at the
seed's size), whatever the number of customers.

numpy only, nothing from Airflow: the same code runs on an MWAA worker and offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from video_recommender.engine.artifacts import FMModel

Scorer = Callable[[np.ndarray], np.ndarray]  # customer indices (B,) -> scores (B, videos), float32, writable


@dataclass(frozen=True)
class ItemSets:
    """Each customer's set of video indices, as CSR: customer ``c`` has ``videos[indptr[c]:indptr[c + 1]]`` (sorted)."""

    indptr: np.ndarray
    videos: np.ndarray

    @classmethod
    def from_pairs(cls, customers: np.ndarray, videos: np.ndarray, n_customers: int) -> ItemSets:
        order = np.lexsort((videos, customers))
        counts = np.bincount(customers, minlength=n_customers)
        indptr = np.zeros(n_customers + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, np.asarray(videos, dtype=np.int32)[order])

    @property
    def n_customers(self) -> int:
        return len(self.indptr) - 1

    def sizes(self) -> np.ndarray:
        return np.diff(self.indptr)

    def of(self, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row in ``customers``, video) for every item of those customers."""
        lo, hi = self.indptr[customers], self.indptr[customers + 1]
        sizes = hi - lo
        rows = np.repeat(np.arange(len(customers)), sizes)
        at = np.repeat(lo - np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes) + np.arange(int(sizes.sum()))
        return rows, self.videos[at]


def fm_scorer(model: FMModel, n_customers: int) -> Scorer:
    """FM's ranking score (without the per-customer constant ``w0 + w[c]``)."""
    video_factors = np.ascontiguousarray(model.v[n_customers:], dtype=np.float32)
    video_bias = np.asarray(model.w[n_customers:], dtype=np.float32)
    customer_factors = np.asarray(model.v[:n_customers], dtype=np.float32)

    def score(customers: np.ndarray) -> np.ndarray:
        scores = customer_factors[customers] @ video_factors.T
        scores += video_bias
        return scores

    return score


def fm_predictions(model: FMModel, n_customers: int, customers: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """FM's prediction for each (customer, video) pair, as batch transform returns it."""
    w, v = model.w.astype(np.float64), model.v.astype(np.float64)
    items = n_customers + videos
    raw = float(model.w0[0]) + w[customers] + w[items] + np.einsum("ij,ij->i", v[customers], v[items])
    return 1.0 / (1.0 + np.exp(-raw)) if model.predictor_type == "binary_classifier" else raw


def popularity_scorer(train_counts: np.ndarray) -> Scorer:
    """The most-popular baseline: every customer gets the videos with the most training ratings."""
    popularity = np.asarray(train_counts, dtype=np.float32)

    def score(customers: np.ndarray) -> np.ndarray:
        return np.tile(popularity, (len(customers), 1))

    return score


def random_scorer(n_videos: int, seed: int) -> Scorer:
    """The random baseline, seeded per block of customers so reruns recommend the same."""

    def score(customers: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([seed, int(customers[0]) if len(customers) else 0, len(customers)])
        return rng.random((len(customers), n_videos), dtype=np.float32)

    return score


def top_n(
    score: Scorer,
    customers: np.ndarray,
    exclude: ItemSets,
    n: int = 10,
    block_rows: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``customers``: the ``n`` best videos not in ``exclude``, best first.

    Returns (videos int32, scores float32), both ``(len(customers), n)``; where a
    customer has fewer than ``n`` videos left, the rest are -1 with score -inf. Ties
    go to the lower video index, so the result does not depend on the block size.
    """
    customers = np.asarray(customers, dtype=np.int64)
    videos = np.full((len(customers), n), -1, dtype=np.int32)
    best = np.full((len(customers), n), -np.inf, dtype=np.float32)
    for lo in range(0, len(customers), block_rows):
        block = customers[lo : lo + block_rows]
        scores = score(block)
        rows, cols = exclude.of(block)
        scores[rows, cols] = -np.inf
        k = min(n, scores.shape[1])
        # flatnonzero, then divmod: 2-d nonzero takes ten times as long on these sparse masks
        cand_rows, cand_cols = np.divmod(np.flatnonzero(scores >= _kth_lower_bound(scores, k)), scores.shape[1])
        cand_scores = scores[cand_rows, cand_cols]
        # by row, score descending, video ascending: the candidates come in (row, video)
        # order, so two stable sorts do it (faster than lexsort of three keys)
        order = np.argsort(-cand_scores, kind="stable")
        order = order[np.argsort(cand_rows[order], kind="stable")]
        cand_rows, cand_cols, cand_scores = cand_rows[order], cand_cols[order], cand_scores[order]
        starts = np.searchsorted(cand_rows, np.arange(len(block)))
        rank = np.arange(len(cand_rows)) - starts[cand_rows]
        keep = (rank < k) & np.isfinite(cand_scores)
        videos[lo + cand_rows[keep], rank[keep]] = cand_cols[keep]
        best[lo + cand_rows[keep], rank[keep]] = cand_scores[keep]
    return videos, best


_SAMPLE_COLUMNS = 2048


def _kth_lower_bound(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, a value at most its k-th largest score: the k-th largest of a fixed sample of columns.

    Every score at or above it is a candidate, so the true best k (and their ties) are
    among about ``k * videos / sample`` candidates per row. A full ``argpartition``
    of every row costs about four times the scoring itself.
    """
    n_cols = scores.shape[1]
    if n_cols <= max(k, _SAMPLE_COLUMNS):
        sample = scores
    else:
        sample = scores[:, :: n_cols // _SAMPLE_COLUMNS]
    width = sample.shape[1]
    kth = np.partition(sample, width - k, axis=1)[:, width - k : width - k + 1]
    return np.where(np.isfinite(kth), kth, -np.inf)  # too few finite in the sample: every finite score


def ranking_metrics(recommended: np.ndarray, relevant: ItemSets, customers: np.ndarray, n_videos: int) -> dict:
    """precision@k, recall@k, NDCG@k and MAP@k over ``customers`` (each with a relevant item), and coverage.

    ``recommended`` is ``top_n``'s videos for ``customers``; ``relevant`` holds each
    customer's relevant test videos. MAP@k divides by ``min(k, relevant)``; coverage is
    the share of all videos recommended to anyone.
    """
    k = recommended.shape[1]
    rows, rel_videos = relevant.of(customers)
    rel_pairs = np.sort(rows.astype(np.int64) * n_videos + rel_videos)
    rec_pairs = np.arange(len(customers), dtype=np.int64)[:, None] * n_videos + recommended
    hits = (recommended >= 0) & np.isin(rec_pairs, rel_pairs, assume_unique=False)
    n_relevant = relevant.sizes()[customers].astype(np.float64)
    n_hits = hits.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k).astype(np.int64) - 1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    shown = recommended[recommended >= 0]
    return {
        f"precision_at_{k}": float(np.mean(n_hits / k)),
        f"recall_at_{k}": float(np.mean(n_hits / n_relevant)),
        f"ndcg_at_{k}": float(np.mean((hits @ discount) / ideal)),
        f"map_at_{k}": float(np.mean((precision_at * hits).sum(axis=1) / np.minimum(n_relevant, k))),
        "catalogue_coverage": float(len(np.unique(shown)) / n_videos) if n_videos else 0.0,
        "customers_evaluated": len(customers),
    }
