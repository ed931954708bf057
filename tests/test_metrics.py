"""Classifier and activity metrics against their definitions, computed the slow way."""

from __future__ import annotations

import numpy as np
import pytest

from video_recommender.metrics import average_precision, classification_metrics, rmse_by_activity, roc_auc


def pairwise_auc(score: np.ndarray, y: np.ndarray) -> float:
    pos, neg = score[y == 1], score[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def threshold_ap(score: np.ndarray, y: np.ndarray) -> float:
    total, ap, previous_recall = y.sum(), 0.0, 0.0
    for t in sorted(set(score.tolist()), reverse=True):
        chosen = score >= t
        recall = (chosen & (y == 1)).sum() / total
        ap += (recall - previous_recall) * (chosen & (y == 1)).sum() / chosen.sum()
        previous_recall = recall
    return ap


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_and_average_precision_match_their_definitions_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.6).astype(np.float64)
    score = np.round(rng.random(300) * 0.5 + 0.3 * y, 1)  # rounded: many ties
    assert roc_auc(score, y) == pytest.approx(pairwise_auc(score, y))
    assert average_precision(score, y) == pytest.approx(threshold_ap(score, y))


def test_degenerate_cases() -> None:
    y = np.array([1.0, 1.0, 1.0])
    assert roc_auc(np.array([0.1, 0.2, 0.3]), y) is None  # one class only
    assert average_precision(np.array([0.5, 0.5]), np.array([0.0, 0.0])) is None
    assert average_precision(np.full(4, 0.7), np.array([1.0, 0, 0, 1])) == pytest.approx(0.5)  # the positive rate
    always_like = classification_metrics(np.ones(4), np.array([1.0, 0, 0, 1]))["binary_f_1.000"]
    assert always_like == pytest.approx(2 * 2 / (4 + 2))


def test_rmse_by_activity_buckets_rows_by_their_customers_training_ratings() -> None:
    y = np.array([4.0, 2.0, 5.0, 3.0])
    pred = np.array([4.5, 2.0, 4.0, 3.0])
    activity = np.array([3, 3, 12, 60])
    rows = rmse_by_activity(pred, y, naive=3.5, activity=activity)
    assert [r["train_ratings"] for r in rows] == ["0-4", "10-19", "50+"]
    assert rows[0]["test_rows"] == 2 and rows[0]["rmse"] == pytest.approx(np.sqrt((0.25 + 0) / 2), abs=1e-6)
    assert rows[1]["naive_rmse"] == pytest.approx(1.5) and rows[2]["rmse"] == 0
