"""A run folder as the transform leaves it: preprocessed, prepared and scored, without a model."""

from __future__ import annotations

import json
from pathlib import Path

from video_recommender import steps
from video_recommender.data.recordio import read_sparse
from video_recommender.layout import RunPaths


def scored_run(folder: Path, reviews: Path, shift: float = 0.0) -> RunPaths:
    """``reviews`` pre-processed and prepared under ``folder``, with a transform output that scores every
    test record as its label plus ``shift`` (so the test RMSE is ``abs(shift)``)."""
    run = RunPaths(folder)
    steps.preprocess_step(reviews, run)
    steps.prepare_step(run)
    run.transform.mkdir(parents=True)
    for f in sorted((run.recordio / "test").iterdir()):
        _, y = read_sparse(f.read_bytes())
        lines = "".join(json.dumps({"score": float(v) + shift}) + "\n" for v in y)
        (run.transform / f"{f.name}.out").write_text(lines)
    return run
