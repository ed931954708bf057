"""The generator: schema, determinism, long tail, learnable structure."""

from __future__ import annotations

import gzip
import io

import numpy as np

from video_recommender.data.reviews import REVIEW_COLUMNS, read_reviews
from video_recommender.data.synthetic import generate_reviews, main, reviews_to_tsv_gz


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a, _ = generate_reviews(scale=0.005, seed=1)
    b, _ = generate_reviews(scale=0.005, seed=1)
    c, _ = generate_reviews(scale=0.005, seed=2)
    assert reviews_to_tsv_gz(a) == reviews_to_tsv_gz(b)
    assert reviews_to_tsv_gz(a) != reviews_to_tsv_gz(c)


def test_written_file_is_the_reviews_schema_and_reads_back() -> None:
    frame, summary = generate_reviews(scale=0.005, seed=3)
    raw = reviews_to_tsv_gz(frame)
    header = gzip.decompress(raw).split(b"\n", 1)[0].decode().split("\t")
    assert header == list(REVIEW_COLUMNS)
    back, report = read_reviews(io.BytesIO(raw), "synthetic.tsv.gz")
    assert report.lines_skipped == 0 and len(back) == summary.reviews
    assert set(back["star_rating"].unique()) <= {1, 2, 3, 4, 5}


def test_long_tail_most_customers_rate_few_videos() -> None:
    frame, summary = generate_reviews(scale=0.02, seed=4)
    per_customer = frame["customer_id"].value_counts()
    assert summary.customers == len(per_customer)
    assert (per_customer >= 5).mean() < 0.12  # about 7% rate five or more
    assert (per_customer == 1).mean() > 0.5
    per_video = frame["product_id"].value_counts()
    top = per_video.iloc[: len(per_video) // 100].sum() / per_video.sum()
    assert top > 0.2  # the top 1% of videos draw a large share of ratings


def test_ratings_carry_customer_and_video_signal() -> None:
    frame, summary = generate_reviews(scale=0.02, seed=5)
    y = frame["star_rating"].astype(float)
    # Share of rating variance between the means of active customers.
    active = frame.groupby("customer_id")["star_rating"].transform("size") >= 10
    sub = frame[active]
    between = sub.groupby("customer_id")["star_rating"].transform("mean").var()
    # Without customer effects the share would be about 1/10 (sampling noise of a mean of >= 10 ratings).
    assert between / sub["star_rating"].astype(float).var() > 0.2
    assert summary.oracle_rmse < 0.6 * y.std()


def test_command_line_writes_file(tmp_path) -> None:
    out = tmp_path / "r.tsv.gz"
    assert main(["--scale", "0.002", "--seed", "9", "--output", str(out)]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert not list(tmp_path.glob(".*tmp*"))
    np.testing.assert_equal(len(gzip.decompress(out.read_bytes()).splitlines()) > 100, True)
