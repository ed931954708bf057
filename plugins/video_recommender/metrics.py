"""Model-quality metrics as FM reports them (numpy only: usable on MWAA without the engine)."""

from __future__ import annotations

import numpy as np


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """FM's regressor metrics, in the order its log prints them."""
    err = pred.astype(np.float64) - y
    mse = float(np.mean(err**2))
    return {"rmse": float(np.sqrt(mse)), "mse": mse, "absolute_loss": float(np.mean(np.abs(err)))}


def classification_metrics(prob: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """FM's classifier metrics (label = score >= 0.5), in the order its log prints them."""
    p = np.clip(prob.astype(np.float64), 1e-12, 1 - 1e-12)
    label = (prob >= 0.5).astype(np.float64)
    tp = float(np.sum((label == 1) & (y == 1)))
    precision = tp / max(float(label.sum()), 1.0)
    recall = tp / max(float(y.sum()), 1.0)
    return {
        "binary_classification_accuracy": float(np.mean(label == y)),
        "binary_classification_cross_entropy": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "binary_f_1.000": 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall),
    }


def roc_auc(score: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); None with one class only."""
    y = y.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score), dtype=np.float64)
    ranks[order] = np.arange(1, len(score) + 1)
    sorted_scores = score[order]
    # average the ranks of tied scores
    starts = np.flatnonzero(np.diff(sorted_scores, prepend=sorted_scores[0] - 1) != 0)
    ends = np.append(starts[1:], len(score))
    mean_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(score: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the precision-recall curve as average precision (tied scores taken together)."""
    y = y.astype(bool)
    if not y.any():
        return None
    order = np.argsort(-score, kind="stable")
    s, hit = score[order], y[order]
    last_of_tie = np.append(np.diff(s) != 0, True)
    tp = np.cumsum(hit)[last_of_tie].astype(np.float64)
    seen = (np.flatnonzero(last_of_tie) + 1).astype(np.float64)
    recall_step = np.diff(tp, prepend=0.0) / tp[-1]
    return float(np.sum(recall_step * tp / seen))


ACTIVITY_BUCKETS = ((0, 4), (5, 9), (10, 19), (20, 49), (50, None))  # ratings in train, inclusive


def rmse_by_activity(pred: np.ndarray, y: np.ndarray, naive: float, activity: np.ndarray) -> list[dict]:
    """Test RMSE of the model and of the naive mean, by how many training ratings the row's customer has."""
    rows = []
    for lo, hi in ACTIVITY_BUCKETS:
        sel = (activity >= lo) & (activity <= (hi if hi is not None else np.iinfo(np.int64).max))
        if not sel.any():
            continue
        rows.append(
            {
                "train_ratings": f"{lo}-{hi}" if hi is not None else f"{lo}+",
                "test_rows": int(sel.sum()),
                "rmse": round(float(np.sqrt(np.mean((pred[sel] - y[sel]) ** 2))), 6),
                "naive_rmse": round(float(np.sqrt(np.mean((naive - y[sel]) ** 2))), 6),
            }
        )
    return rows
