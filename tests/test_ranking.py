"""Top-N from an FM model against a brute-force full sort, and ranking metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from video_recommender.engine.artifacts import FMModel
from video_recommender.ranking import (
    ItemSets,
    fm_predictions,
    fm_scorer,
    popularity_scorer,
    random_scorer,
    ranking_metrics,
    top_n,
)


def random_model(n_customers: int, n_videos: int, factors: int = 8, seed: int = 0) -> FMModel:
    rng = np.random.default_rng(seed)
    dim = n_customers + n_videos
    return FMModel(
        np.array([3.5], np.float32),
        rng.normal(size=dim).astype(np.float32),
        rng.normal(size=(dim, factors)).astype(np.float32),
    )


def brute_force(scores: np.ndarray, exclude: ItemSets, customers: np.ndarray, n: int) -> list[list[int]]:
    """Sort every video of every customer: score descending, then video index ascending."""
    out = []
    for c, row in zip(customers, scores, strict=True):
        rated = set(exclude.videos[exclude.indptr[c] : exclude.indptr[c + 1]].tolist())
        ranked = sorted((v for v in range(len(row)) if v not in rated), key=lambda v: (-row[v], v))
        out.append(ranked[:n] + [-1] * (n - len(ranked[:n])))
    return out


@pytest.mark.parametrize("n_videos", [7, 300, 5000])  # fewer, a few more and many more videos than the sample
def test_top_n_is_the_full_sort_whatever_the_block_size(n_videos: int) -> None:
    rng = np.random.default_rng(n_videos)
    n_customers = 60
    model = random_model(n_customers, n_videos)
    pairs = rng.integers(0, n_customers, 400), rng.integers(0, n_videos, 400)
    rated = ItemSets.from_pairs(*pairs, n_customers)
    customers = rng.permutation(n_customers)[:45]
    score = fm_scorer(model, n_customers)
    expected = brute_force(score(customers), rated, customers, 10)
    for block_rows in (1, 7, 1024):
        videos, best = top_n(score, customers, rated, n=10, block_rows=block_rows)
        assert videos.tolist() == expected
        finite = np.where(np.isfinite(best), best, -1e30)
        assert np.all(np.diff(finite, axis=1) <= 0)  # best first


def test_a_customer_who_rated_almost_everything_gets_what_is_left() -> None:
    model = random_model(2, 5)
    rated = ItemSets.from_pairs(np.array([0, 0, 0, 0, 1]), np.array([0, 1, 2, 4, 2]), 2)
    score = fm_scorer(model, 2)
    videos, best = top_n(score, np.array([0, 1]), rated, n=3)
    assert videos[0].tolist() == [3, -1, -1] and np.isneginf(best[0, 1:]).all()
    assert videos.tolist() == brute_force(score(np.array([0, 1])), rated, np.array([0, 1]), 3)
    assert 2 not in videos[1]


def test_ties_go_to_the_lower_video_index() -> None:
    counts = np.array([5, 9, 9, 9, 1, 9], np.float32)  # four videos tied for the top
    nobody = ItemSets.from_pairs(np.array([], np.int64), np.array([], np.int64), 3)
    videos, _ = top_n(popularity_scorer(counts), np.arange(3), nobody, n=3)
    assert videos.tolist() == [[1, 2, 3]] * 3


def test_the_ranking_score_orders_videos_as_fm_predictions_do() -> None:
    model = random_model(10, 40)
    score = fm_scorer(model, 10)(np.arange(10))
    for c in range(10):
        pred = fm_predictions(model, 10, np.full(40, c), np.arange(40))
        np.testing.assert_allclose(pred - score[c], pred[0] - score[c, 0], rtol=0, atol=1e-4)


def test_random_baseline_is_seeded() -> None:
    nobody = ItemSets.from_pairs(np.array([], np.int64), np.array([], np.int64), 50)
    a, _ = top_n(random_scorer(200, seed=1), np.arange(50), nobody, block_rows=16)
    b, _ = top_n(random_scorer(200, seed=1), np.arange(50), nobody, block_rows=16)
    c, _ = top_n(random_scorer(200, seed=2), np.arange(50), nobody, block_rows=16)
    assert (a == b).all() and (a != c).any()


def test_item_sets_give_each_customers_items() -> None:
    sets = ItemSets.from_pairs(np.array([2, 0, 2, 2]), np.array([5, 1, 3, 4]), 4)
    assert sets.sizes().tolist() == [1, 0, 3, 0]
    rows, videos = sets.of(np.array([2, 1, 0]))
    assert rows.tolist() == [0, 0, 0, 2] and videos.tolist() == [3, 4, 5, 1]


def test_ranking_metrics_by_hand() -> None:
    # customer 0: relevant {1, 2}, recommended [1, 5, 2] -> hits at ranks 1 and 3
    # customer 1: relevant {7}, recommended [3, 4, -1] -> no hit
    relevant = ItemSets.from_pairs(np.array([0, 0, 1]), np.array([1, 2, 7]), 2)
    recommended = np.array([[1, 5, 2], [3, 4, -1]])
    m = ranking_metrics(recommended, relevant, np.array([0, 1]), n_videos=10)
    assert m["precision_at_3"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall_at_3"] == pytest.approx((1 + 0) / 2)
    dcg = 1 + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3)
    assert m["ndcg_at_3"] == pytest.approx((dcg / idcg + 0) / 2)
    assert m["map_at_3"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)
    assert m["catalogue_coverage"] == pytest.approx(5 / 10)  # 1, 5, 2, 3, 4
    assert m["customers_evaluated"] == 2
