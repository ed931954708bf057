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
