"""Synthetic video reviews in the Amazon customer-reviews TSV schema.

Stands in for the public Amazon Digital Video reviews file (about 4 million
reviews by 2 million customers of 160 thousand videos) so the workflow runs
offline. Two properties matter to the workflow and are built in:

* a long tail: customer activity follows a Zipf law (most customers rate one
  or two videos, about 5% rate five or more) and video popularity a power law,
  so the pre-processing filters remove most customers, as on the real data;
* hidden taste structure a factorization model can learn: a rating is
  ``clip(round(mu + b_customer + b_video + <u_customer, v_video> + noise), 1, 5)``
  with rank-``TASTE_RANK`` factors and Gaussian noise of ``NOISE_SD``.

Everything is drawn from one ``numpy.random.Generator(seed)``: the same seed
and scale give the same bytes.

Command line: ``python -m video_recommender.data.synthetic --scale 1.0 --output reviews.tsv.gz``
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from isal import igzip

from video_recommender.data.reviews import REVIEW_COLUMNS
from video_recommender.storage import open_atomically

FULL_REVIEWS = 4_000_000
FULL_CUSTOMERS = 2_000_000
FULL_VIDEOS = 160_000
# Ratings per customer: 1-4 with these probabilities for 93% of customers; the other 7%
# rate 5 or more, with a power-law tail P(n) ~ n^-TAIL_EXPONENT (mean about 16).
CUSTOMER_BODY = {1: 0.72, 2: 0.16, 3: 0.07, 4: 0.05}
ACTIVE_SHARE = 0.07
TAIL_EXPONENT = 2.45
VIDEO_POWER = 1.0  # popularity of the video at rank r ~ 1/r
DUPLICATE_SHARE = 0.01  # re-reviews: the same customer rates the same video again, later
MAX_RATINGS_PER_CUSTOMER = 2_000
TASTE_RANK = 4
GLOBAL_MEAN = 3.7
CUSTOMER_BIAS_SD = 0.7
VIDEO_BIAS_SD = 0.5
TASTE_SD = 0.9  # sd of <u, v>
NOISE_SD = 0.4
DEMO_SCALE = 0.05


@dataclass(frozen=True)
class SyntheticSummary:
    seed: int
    scale: float
    reviews: int
    customers: int
    videos: int
    taste_rank: int
    noise_sd: float
    oracle_rmse: float  # RMSE of clip(latent score, 1, 5): a floor no model should beat by much


def generate_table(scale: float = DEMO_SCALE, seed: int = 42) -> tuple[pa.Table, SyntheticSummary]:
    """Return reviews with all 15 schema columns (strings and ints) and a summary."""
    if not 0 < scale <= 10:
        raise ValueError(f"scale must be in (0, 10], got {scale}")
    rng = np.random.default_rng(seed)
    n_customers = max(50, round(FULL_CUSTOMERS * scale))
    n_videos = max(20, round(FULL_VIDEOS * scale))

    counts = rng.choice(list(CUSTOMER_BODY), size=n_customers, p=list(CUSTOMER_BODY.values()))
    active = rng.random(n_customers) < ACTIVE_SHARE
    tail = np.floor(5 * rng.random(int(active.sum())) ** (-1 / (TAIL_EXPONENT - 1)))
    counts[active] = np.minimum(tail, MAX_RATINGS_PER_CUSTOMER)
    customer = np.repeat(np.arange(n_customers), counts)
    n = len(customer)

    popularity = np.arange(1, n_videos + 1, dtype=np.float64) ** -VIDEO_POWER
    video_rank = rng.choice(n_videos, size=n, p=popularity / popularity.sum())
    # Shuffle which catalogue id holds which popularity rank, so ids say nothing about popularity.
    video = rng.permutation(n_videos)[video_rank]
    # A customer picks distinct videos; then a few deliberate re-reviews are appended.
    _, first = np.unique(customer.astype(np.int64) * n_videos + video, return_index=True)
    first.sort()
    again = rng.choice(first, size=int(DUPLICATE_SHARE * len(first)), replace=False)
    pick = np.concatenate([first, again])
    customer, video = customer[pick], video[pick]
    n = len(customer)

    u = rng.normal(0.0, 1.0, size=(n_customers, TASTE_RANK)).astype(np.float32)
    v = rng.normal(0.0, 1.0, size=(n_videos, TASTE_RANK)).astype(np.float32)
    taste_scale = TASTE_SD / np.sqrt(TASTE_RANK)
    b_customer = rng.normal(0.0, CUSTOMER_BIAS_SD, size=n_customers)
    b_video = rng.normal(0.0, VIDEO_BIAS_SD, size=n_videos)
    latent = GLOBAL_MEAN + b_customer[customer] + b_video[video]
    latent += taste_scale * np.einsum("ij,ij->i", u[customer], v[video], dtype=np.float64)
    rating = np.clip(np.rint(latent + rng.normal(0.0, NOISE_SD, size=n)), 1, 5).astype(np.int8)
    oracle = float(np.sqrt(np.mean((np.clip(latent, 1, 5) - rating) ** 2)))

    order = rng.permutation(n)  # file order is not grouped by customer
    customer, video, rating = customer[order], video[order], rating[order]
    day = rng.integers(0, 5_600, size=n)  # 2000-01-01 .. 2015-05
    helpful = rng.poisson(0.7, size=n)
    review_number = rng.permutation(n) * 7919 + 104_729
    total = helpful + rng.poisson(0.3, size=n)
    verified = rng.random(n) < 0.8

    # Strings are built once per distinct value (per video, day or rating) and gathered
    # with ``take``, or from integers by arrow's cast: numpy's per-element string
    # formatting took 27 s at scale 1.0, this takes about 2.
    video_strings = np.arange(n_videos)
    per_day = (np.datetime64("2000-01-01") + np.arange(5_600).astype("timedelta64[D]")).astype(str)
    table = pa.table(
        {
            "marketplace": _repeat("US", n),
            "customer_id": pa.array(10_000_000 + customer * 7 + 3).cast(pa.string()),
            "review_id": _hex_strings(review_number, 12, prefix=b"R"),
            "product_id": _hex_strings(video_strings * 13 + 5, 7, prefix=b"B00").take(video),
            "product_parent": pa.array(100_000_000 + video_strings * 31).cast(pa.string()).take(video),
            "product_title": pc.binary_join_element_wise(
                "Synthetic Video ", pa.array(video_strings).cast(pa.string()), ""
            ).take(video),
            "product_category": _repeat("Digital_Video_Download", n),
            "star_rating": pa.array(rating),
            "helpful_votes": pa.array(helpful),
            "total_votes": pa.array(total),
            "vine": _repeat("N", n),
            "verified_purchase": pa.array(["N", "Y"]).take(verified.astype(np.int8)),
            "review_headline": pa.array([f"{r} Stars" for r in range(6)]).take(rating),
            "review_body": _repeat("Generated review text.", n),
            "review_date": pa.array(per_day).take(day),
        }
    ).select(list(REVIEW_COLUMNS))
    summary = SyntheticSummary(
        seed=seed,
        scale=scale,
        reviews=n,
        customers=int(np.count_nonzero(counts)),
        videos=len(np.unique(video)),
        taste_rank=TASTE_RANK,
        noise_sd=NOISE_SD,
        oracle_rmse=round(oracle, 4),
    )
    return table, summary


def generate_reviews(scale: float = DEMO_SCALE, seed: int = 42) -> tuple[pd.DataFrame, SyntheticSummary]:
    """``generate_table`` as a pandas DataFrame (for small scales and tests)."""
    table, summary = generate_table(scale, seed)
    return table.to_pandas(), summary


def _repeat(value: str, n: int) -> pa.Array:
    return pa.array([value]).take(np.zeros(n, dtype=np.int32))


_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _hex_strings(values: np.ndarray, width: int, prefix: bytes = b"") -> pa.Array:
    """``prefix + "%0{width}X" % value`` for non-negative integers below 16**width, without a Python loop."""
    values = np.asarray(values, dtype=np.uint64)
    shifts = np.arange(4 * (width - 1), -1, -4, dtype=np.uint64)
    chars = np.empty((len(values), len(prefix) + width), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    chars[:, len(prefix) :] = _HEX[(values[:, None] >> shifts) & np.uint64(15)]
    offsets = np.arange(0, chars.size + 1, chars.shape[1], dtype=np.int32)
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def write_reviews_tsv_gz(table: pa.Table, sink: BinaryIO) -> None:
    """Write reviews as gzip-compressed TSV with a header line (no quoting, as the real files).

    Streamed: arrow's CSV writer (C++) into ISA-L's gzip (igzip, several times zlib's
    speed); the header carries no file name and time 0, so the same rows give the same bytes.
    """
    with igzip.IGzipFile(filename="", mode="wb", fileobj=sink, compresslevel=1, mtime=0) as gz:
        gz.write(("\t".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, gz, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))


def reviews_to_tsv_gz(reviews: pa.Table | pd.DataFrame) -> bytes:
    """``write_reviews_tsv_gz`` into bytes."""
    table = reviews if isinstance(reviews, pa.Table) else pa.Table.from_pandas(reviews, preserve_index=False)
    buffer = io.BytesIO()
    write_reviews_tsv_gz(table, buffer)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write synthetic reviews in the Amazon customer-reviews TSV schema.")
    parser.add_argument(
        "--scale", type=float, default=DEMO_SCALE, help="1.0 = the original sample's size (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, required=True, help="file to write (.tsv.gz)")
    args = parser.parse_args(argv)
    table, summary = generate_table(args.scale, args.seed)
    with open_atomically(args.output) as fh:
        write_reviews_tsv_gz(table, fh)
    print(json.dumps(asdict(summary)))
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
