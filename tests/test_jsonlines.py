"""The compiled writer of batch-transform lines: exact text, order, labels, JSON validity."""

from __future__ import annotations

import json

import numpy as np

from video_recommender.engine.transform import format_predictions


def test_exact_lines_for_known_scores() -> None:
    scores = np.array([3.8416154, 4.0, -0.25, 0.0, 12345.678, np.nan], np.float32)
    text = format_predictions(scores, False, "application/jsonlines").decode()
    assert text.splitlines() == [
        '{"score": 3.8416154}',
        '{"score": 4.0}',
        '{"score": -0.25}',
        '{"score": 0.0}',
        '{"score": 12345.6777344}',  # the float32 nearest to 12345.678, to 7 decimals
        '{"score": NaN}',
    ]
    assert text.endswith("\n")


def test_classifier_label_agrees_with_the_written_score() -> None:
    scores = np.array([0.49999997, 0.4999999, 0.5, 0.9, 0.1], np.float32)
    records = [json.loads(line) for line in format_predictions(scores, True, "application/jsonlines").splitlines()]
    assert [r["predicted_label"] for r in records] == [1, 0, 1, 1, 0]
    assert all(r["predicted_label"] == int(r["score"] >= 0.5) for r in records)


def test_random_scores_round_trip_in_order_as_json_and_jsonlines() -> None:
    scores = np.random.default_rng(0).normal(3.5, 2.0, 50_000).astype(np.float32)
    lines = [json.loads(x)["score"] for x in format_predictions(scores, False, "application/jsonlines").splitlines()]
    np.testing.assert_allclose(lines, scores.astype(np.float64), rtol=0, atol=6e-8)
    document = json.loads(format_predictions(scores[:3], True, "application/json"))
    assert [p["score"] for p in document["predictions"]] == lines[:3]
    assert format_predictions(scores[:0], False, "application/jsonlines") == b""


def test_without_assemble_with_records_are_concatenated() -> None:
    scores = np.array([1.5, 2.0], np.float32)
    assert (
        format_predictions(scores, False, "application/jsonlines", assemble_with="None")
        == b'{"score": 1.5}{"score": 2.0}'
    )
