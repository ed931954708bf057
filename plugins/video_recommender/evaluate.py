"""Evaluate batch-transform output against the test labels and write ``metrics.json``.

Batch transform writes one ``.out`` file per input object, one score per record in
input order, so scores are joined to labels by file and position. Which file: AWS
documents only the name, ``<input object name>.out``, "in a corresponding subfolder"
of the output path, and its own example puts it under the input prefix's name
(``input-name-prefix/dataset01/data.csv`` -> ``output-name-prefix/input-name-prefix/data.csv.out``,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html),
while jobs commonly write it at the object's path relative to the input prefix. So
an output is found by its file name anywhere under the output path, and only when two
have that name does its relative path decide.
``naive_rmse`` is the RMSE of always predicting the training mean rating, the
baseline the original sample reports.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from video_recommender.data.recordio import read_sparse
from video_recommender.layout import RunPaths
from video_recommender.metrics import (
    average_precision,
    classification_metrics,
    regression_metrics,
    rmse_by_activity,
    roc_auc,
)
from video_recommender.storage import PathLike, list_files, relative_name, uri, write_atomically

log = logging.getLogger(__name__)


class EvaluationError(ValueError):
    """Transform output and test data do not line up."""


def read_predictions(data: bytes, source: str) -> np.ndarray:
    """Parse a ``.out`` file (JSON Lines or JSON) back into scores."""
    text = data.decode()
    try:
        if text.lstrip().startswith('{"predictions"'):
            return np.asarray([p["score"] for p in json.loads(text)["predictions"]], dtype=np.float64)
        return np.asarray([json.loads(line)["score"] for line in text.splitlines() if line.strip()], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{source}: not FM batch-transform output ({exc})") from exc


def _output_for(test_file: PathLike, test_prefix: PathLike, outputs: dict[str, list[PathLike]], root: PathLike):
    name = f"{test_file.name}.out"
    found = outputs.get(name, [])
    if len(found) > 1:  # the same object name in two subfolders: the relative path decides
        wanted = f"{relative_name(test_file, test_prefix)}.out"
        found = [o for o in found if relative_name(o, root).endswith(wanted)]
    if len(found) != 1:
        what = "missing" if not found else f"ambiguous ({', '.join(map(str, found))})"
        raise EvaluationError(f"{root}: transform output {name} {what} for test file {test_file}")
    return found[0]


def join_scores(test_prefix: PathLike, transform_prefix: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (labels, scores, customer index) over every test object, matched by file name and record position."""
    labels, scores, customers = [], [], []
    test_files = list_files(test_prefix)
    if not test_files:
        raise EvaluationError(f"{test_prefix}: no test files")
    outputs: dict[str, list[PathLike]] = {}
    for o in list_files(transform_prefix):
        outputs.setdefault(o.name, []).append(o)
    for f in test_files:
        rows, y = read_sparse(f.read_bytes(), source=str(f))
        out = _output_for(f, test_prefix, outputs, transform_prefix)
        s = read_predictions(out.read_bytes(), source=str(out))
        if y is None or len(s) != len(y):
            raise EvaluationError(f"{out}: {len(s)} scores for {0 if y is None else len(y)} test records in {f}")
        labels.append(y)
        scores.append(s)
        customers.append(rows.indices[rows.indptr[:-1]])  # a row's first key is its customer's column
    return np.concatenate(labels).astype(np.float64), np.concatenate(scores), np.concatenate(customers)


def _train_ratings(run: RunPaths, n_customers: int) -> np.ndarray:
    """Training ratings per customer index."""
    import pyarrow.parquet as pq

    with (run.preprocessed / "train.parquet").open("rb") as fh:
        customers = pq.read_table(fh, columns=["customer_index"])["customer_index"].to_numpy()
    return np.bincount(customers, minlength=n_customers)


def evaluate_step(
    run: RunPaths,
    predictor_type: str = "regressor",
    model: dict | None = None,
    learning_curve: dict | None = None,
    *,
    tuning_trials: dict | None = None,
) -> dict:
    """Compute test metrics, write ``metrics.json`` next to the run's outputs, return them.

    Regressor: ``test_rmse`` against ``naive_rmse`` (always the training mean). Binary
    classifier (likes): accuracy, cross-entropy and F1 against always predicting the
    training like-rate. ``model`` says where the scored model came from; ``tuning_trials``
    (``tuning_trials.trials_for_report``, on the tuning branch) adds the trials to the report.
    """
    with (run.preprocessed / "summary.json").open("r") as fh:
        pre = json.load(fh)
    y, s, customer = join_scores(run.recordio / "test", run.transform)
    counts = pre["counts"]
    if predictor_type == "binary_classifier":
        rate = pre["train_like_rate"]
        test = classification_metrics(s, y)
        naive = classification_metrics(np.full_like(y, rate), y)
        quality = {
            "test_accuracy": test["binary_classification_accuracy"],
            "test_cross_entropy": test["binary_classification_cross_entropy"],
            "test_f1": test["binary_f_1.000"],
            "test_roc_auc": roc_auc(s, y),
            "test_pr_auc": average_precision(s, y),
            "naive_accuracy": naive["binary_classification_accuracy"],
            "naive_cross_entropy": naive["binary_classification_cross_entropy"],
            # always predicting a like: its F1 is the bar a like-classifier must clear
            "always_like_f1": classification_metrics(np.ones_like(y), y)["binary_f_1.000"],
            "always_like_pr_auc": float(np.mean(y)),  # a constant score's average precision is the like rate
            "train_like_rate": rate,
        }
        summary = (
            f"test F1 {quality['test_f1']:.4f} vs always-like {quality['always_like_f1']:.4f}, "
            f"ROC-AUC {quality['test_roc_auc'] or 0:.4f}"
        )
    else:
        test_rmse = regression_metrics(s, y)["rmse"]
        naive_rmse = regression_metrics(np.full_like(y, pre["train_mean_rating"]), y)["rmse"]
        quality = {
            "test_rmse": test_rmse,
            "naive_rmse": naive_rmse,
            "rmse_ratio_to_naive": test_rmse / naive_rmse if naive_rmse else None,
            "train_mean_rating": pre["train_mean_rating"],
            "rmse_by_activity": rmse_by_activity(
                s, y, pre["train_mean_rating"], _train_ratings(run, pre["n_customers"])[customer]
            ),
        }
        summary = f"test RMSE {test_rmse:.4f} vs naive {naive_rmse:.4f}"
    metrics = {
        **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in quality.items()},
        "predictor_type": predictor_type,
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
    if run.ranking.exists():  # written by recommend, which runs beside the transform
        with run.ranking.open("r") as fh:
            metrics["ranking"] = json.load(fh)
    write_atomically(run.metrics, (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode())
    from video_recommender.report import write_report

    write_report(run, metrics, y, s, seed=42, learning_curve=learning_curve, tuning_trials=tuning_trials)
    log.info("%s (%d test rows); wrote %s", summary, len(y), run.metrics)
    return {**metrics, "metrics_uri": uri(run.metrics), "report_uri": uri(run.report)}
