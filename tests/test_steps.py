"""The data steps over a run folder: preprocess -> prepare (RecordIO) -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scored_runs import scored_run

from video_recommender import steps
from video_recommender.data.recordio import read_sparse
from video_recommender.evaluate import EvaluationError, evaluate_step
from video_recommender.layout import RunPaths, run_key


def test_run_key_is_a_safe_folder_name() -> None:
    assert run_key("manual__2026-11-25T10:00:00+00:00") == "manual__2026-11-25T10_00_00_00_00"


def test_preprocess_and_prepare_write_recordio(tmp_path: Path, demo_reviews: Path, monkeypatch) -> None:
    monkeypatch.setattr(steps, "TEST_RECORDS_PER_FILE", 1_000)
    run = RunPaths(tmp_path / "run")
    summary = steps.preprocess_step(demo_reviews, run)
    prepared = steps.prepare_step(run)
    counts = summary["counts"]
    assert prepared["rows"] == {
        "train": counts["train_rows"],
        "validate": counts["validate_rows"],
        "test": counts["test_rows"],
    }
    train, y = read_sparse((run.recordio / "train" / "train_00000.protobuf").read_bytes())
    assert train.n_rows == counts["train_rows"] and train.n_cols == summary["feature_dim"]
    assert np.all(np.diff(train.indptr) == 2)  # one customer and one video per row
    assert np.all(train.indices[0::2] < summary["n_customers"]) and np.all(
        train.indices[1::2] >= summary["n_customers"]
    )
    assert set(np.unique(y)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    test_files = sorted(p.name for p in (run.recordio / "test").iterdir())
    assert len(test_files) == -(-counts["test_rows"] // 1_000) and test_files[0] == "test_00000.protobuf"
    sizes = [read_sparse((run.recordio / "test" / f).read_bytes())[0].n_rows for f in test_files]
    assert sizes[:-1] == [1_000] * (len(sizes) - 1) and sum(sizes) == counts["test_rows"]
    assert not list(run.root.rglob("*.tmp"))


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "reviews.tsv"
    bad.write_text("customer_id\tproduct_id\n1\t2\n")
    with pytest.raises(ValueError, match=r"reviews\.tsv: header line has no column 'star_rating'"):
        steps.preprocess_step(bad, RunPaths(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(FileNotFoundError, match=r"missing\.tsv"):
        steps.preprocess_step(tmp_path / "missing.tsv", RunPaths(tmp_path / "run"))


def test_evaluate_joins_scores_to_labels(tmp_path: Path, demo_reviews: Path) -> None:
    # A transform output that predicts every label exactly, minus 0.5: RMSE must be 0.5.
    run = scored_run(tmp_path / "run", demo_reviews, shift=-0.5)
    metrics = evaluate_step(run)
    assert metrics["test_rmse"] == pytest.approx(0.5)
    on_disk = json.loads(run.metrics.read_text())
    assert on_disk["rows"]["scored"] == on_disk["rows"]["test"] and on_disk["feature_dim"] > 0
    assert on_disk["naive_rmse"] > 0.5


def test_evaluate_refuses_misaligned_output(tmp_path: Path, demo_reviews: Path) -> None:
    run = RunPaths(tmp_path / "run")
    steps.preprocess_step(demo_reviews, run)
    steps.prepare_step(run)
    run.transform.mkdir(parents=True)
    first = sorted((run.recordio / "test").iterdir())[0]
    (run.transform / f"{first.name}.out").write_text('{"score": 4.0}\n')
    with pytest.raises(EvaluationError, match="1 scores for"):
        evaluate_step(run)
    assert not run.metrics.exists()


def test_shards_are_contiguous_slices_that_train_as_one_file(tmp_path: Path, demo_reviews: Path) -> None:
    """ShardedByS3Key gives each instance whole objects; one instance reading them in order sees one file."""
    from video_recommender.engine.training import input_objects

    one, four = RunPaths(tmp_path / "one"), RunPaths(tmp_path / "four")
    steps.preprocess_step(demo_reviews, one)
    steps.preprocess_step(demo_reviews, four)
    steps.prepare_step(one, shards=1)
    steps.prepare_step(four, shards=4)
    for channel in ("train", "validate"):
        files = sorted(p.name for p in (four.recordio / channel).iterdir())
        assert files == [f"{channel}_{i:05d}.protobuf" for i in range(4)]
        sizes = [read_sparse(p.read_bytes())[0].n_rows for p in sorted((four.recordio / channel).iterdir())]
        assert max(sizes) - min(sizes) <= 1  # each instance gets a fair share
        # What the local engine (and an instance reading every shard in S3's key order) reads:
        objects = input_objects({"S3Uri": f"{four.recordio / channel}/", "S3DataType": "S3Prefix"}, Path)
        merged = [read_sparse(f.read_bytes()) for f, _ in objects]
        single, labels = read_sparse((one.recordio / channel / f"{channel}_00000.protobuf").read_bytes())
        np.testing.assert_array_equal(np.concatenate([m[1] for m in merged]), labels)
        np.testing.assert_array_equal(np.concatenate([m[0].indices for m in merged]), single.indices)


def test_shard_bounds_cover_every_row_once() -> None:
    assert steps.shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert steps.shard_bounds(2, 4) == [(0, 1), (1, 2)]  # never an empty shard
    assert steps.shard_bounds(0, 4) == [(0, 0)]


def test_reruns_write_the_same_bytes_and_chunking_changes_none(tmp_path: Path, demo_reviews: Path, monkeypatch) -> None:
    """Splits and RecordIO are streamed in chunks; the chunk size must not show in any output byte."""
    whole, chunked, again = (RunPaths(tmp_path / name) for name in ("whole", "chunked", "again"))
    for run in (whole, again):
        steps.preprocess_step(demo_reviews, run)
        steps.prepare_step(run, shards=2)
    monkeypatch.setattr(steps, "CHUNK_ROWS", 777)  # row groups and RecordIO pieces cross shard and file edges
    steps.preprocess_step(demo_reviews, chunked)
    steps.prepare_step(chunked, shards=2)

    def files(run: RunPaths, pattern: str) -> dict[str, bytes]:
        return {
            p.relative_to(run.root).as_posix(): p.read_bytes() for p in sorted(run.root.rglob(pattern)) if p.is_file()
        }

    assert files(whole, "*") == files(again, "*")  # a rerun: byte-identical
    assert len(files(whole, "*.protobuf")) > 3
    assert files(whole, "*.protobuf") == files(chunked, "*.protobuf")
    import pandas as pd

    for name in ("train", "validate", "test"):
        part = f"preprocessed/{name}.parquet"
        pd.testing.assert_frame_equal(pd.read_parquet(whole.root / part), pd.read_parquet(chunked.root / part))
