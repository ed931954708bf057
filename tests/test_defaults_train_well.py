"""The DAG's FM defaults, and every corner of its tuning box, train well under real FM's optimiser.

The engine trains as real SageMaker FM does (lazy Adam), so a value that trains well
here trains well on SageMaker: no default and no tuning job may be spent on a model
that diverges or barely beats the train mean.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from video_recommender.data.preprocess import preprocess
from video_recommender.data.reviews import read_reviews
from video_recommender.engine.hyperparameters import parse_hyperparameters
from video_recommender.engine.training import JobFailed, score, train_model
from video_recommender.metrics import regression_metrics
from video_recommender.sagemaker_requests import DEFAULT_TUNING_RANGES
from video_recommender.settings import DEFAULT_HYPERPARAMETERS
from video_recommender.steps import one_hot_rows


@pytest.fixture(scope="module")
def split(demo_reviews: Path) -> dict:
    with demo_reviews.open("rb") as fh:
        reviews, _ = read_reviews(fh, str(demo_reviews))
    result = preprocess(reviews, source=str(demo_reviews))
    data = {"feature_dim": str(result.feature_dim)}
    for name in ("train", "validate"):
        frame = getattr(result, name)
        data[name] = (
            one_hot_rows(frame, result.n_customers, result.feature_dim),
            frame["star_rating"].to_numpy(np.float32),
        )
    y_train, y_val = data["train"][1], data["validate"][1]
    data["naive"] = float(np.sqrt(np.mean((y_val - y_train.mean()) ** 2)))
    return data


def validation_ratio(split: dict, **overrides: str) -> float:
    """Validation RMSE / naive RMSE after training with the defaults and ``overrides``."""
    hp = parse_hyperparameters({**DEFAULT_HYPERPARAMETERS, **overrides, "feature_dim": split["feature_dim"]})
    try:
        model, _ = train_model(*split["train"], hp, emit=lambda _: None)
    except JobFailed:  # diverged
        return float("inf")
    rows, y = split["validate"]
    return regression_metrics(score(model, rows), y)["rmse"] / split["naive"]


def test_the_defaults_train_well(split: dict) -> None:
    assert validation_ratio(split) < 0.85


def _corners() -> list[dict[str, str]]:
    ranges = [r for group in DEFAULT_TUNING_RANGES.values() for r in group]
    return [
        {r["Name"]: value for r, value in zip(ranges, values, strict=True)}
        for values in itertools.product(*[(r["MinValue"], r["MaxValue"]) for r in ranges])
    ]


@pytest.mark.parametrize("corner", _corners(), ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_every_corner_of_the_tuning_box_trains_well(split: dict, corner: dict[str, str]) -> None:
    assert validation_ratio(split, **corner) < 0.9


def test_rates_chosen_for_plain_sgd_would_not(split: dict) -> None:
    # The previous defaults (tuned for an SGD engine) under real FM's rules: the check can fail.
    assert validation_ratio(split, linear_lr="0.5", factors_lr="4", epochs="25") > 2
