"""Evaluate batch-transform output against the test labels and write ``metrics.json``.

The transform writes ``<name>.out`` for every test object ``<name>``, one score per
record in input order, so scores are joined to labels by file and position.
``naive_rmse`` is the RMSE of always predicting the training mean rating, the
baseline the original sample reports.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from video_recommender.data.recordio import read_sparse
from video_recommender.engine.transform import read_predictions
from video_recommender.layout import RunPaths
from video_recommender.storage import PathLike, list_files, relative_name, write_atomically

log = logging.getLogger(__name__)


class EvaluationError(ValueError):
    """Transform output and test data do not line up."""


def join_scores(test_prefix: PathLike, transform_prefix: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels, scores) over every test object, matched by file name and record position."""
    labels, scores = [], []
    test_files = list_files(test_prefix)
    if not test_files:
        raise EvaluationError(f"{test_prefix}: no test files")
    for f in test_files:
        _, y = read_sparse(f.read_bytes(), source=str(f))
        out = transform_prefix / f"{relative_name(f, test_prefix)}.out"
        if not out.exists():
            raise EvaluationError(f"{out}: transform output missing for test file {f}")
        s = read_predictions(out.read_bytes(), source=str(out))
        if y is None or len(s) != len(y):
            raise EvaluationError(f"{out}: {len(s)} scores for {0 if y is None else len(y)} test records in {f}")
        labels.append(y)
        scores.append(s)
    return np.concatenate(labels).astype(np.float64), np.concatenate(scores)


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - y) ** 2)))


def evaluate_step(run: RunPaths, model: dict | None = None) -> dict:
    """Compute test metrics, write ``metrics.json`` next to the run's outputs, return them.

    ``model`` describes where the scored model came from (job names, hyper-parameters).
    """
    with (run.preprocessed / "summary.json").open("r") as fh:
        pre = json.load(fh)
    y, s = join_scores(run.recordio / "test", run.transform)
    train_mean = pre["train_mean_rating"]
    test_rmse = rmse(s, y)
    naive = rmse(np.full_like(y, train_mean), y)
    counts = pre["counts"]
    metrics = {
        "test_rmse": round(test_rmse, 6),
        "naive_rmse": round(naive, 6),
        "rmse_ratio_to_naive": round(test_rmse / naive, 6) if naive else None,
        "train_mean_rating": round(train_mean, 6),
        "feature_dim": pre["feature_dim"],
        "customers": pre["n_customers"],
        "videos": pre["n_videos"],
        "rows": {
            "read": pre["read"]["rows_kept"],
            "lines_skipped": pre["read"]["lines_skipped"],
            "lines_skipped_by_reason": pre["read"]["skipped_by_reason"],
            "after_filter": counts["rows_after_filter"],
            "after_dedupe": counts["rows_after_dedupe"],
            "train": counts["train_rows"],
            "validate": counts["validate_rows"],
            "test": counts["test_rows"],
            "scored": len(y),
        },
        "input": pre["input"],
    }
    metrics.update(model or {})
    write_atomically(run.metrics, (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode())
    log.info("test RMSE %.4f vs naive %.4f (%d test rows); wrote %s", test_rmse, naive, len(y), run.metrics)
    return {**metrics, "metrics_uri": str(run.metrics)}
