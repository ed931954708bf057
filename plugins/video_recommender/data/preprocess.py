"""Pre-processing as the original SageMaker + Airflow sample does it, in bounded memory.

1. keep customers with at least ``min_customer_ratings`` ratings and videos with at
   least ``min_video_ratings`` (both counted once, on the rows read);
2. drop duplicate customer-video pairs, keeping the latest review (by ``review_date``
   as a date, file order breaking ties): a customer's newest opinion is the one to predict;
3. index customers and videos sequentially (sorted ids -> 0..n-1);
4. split 60/20/20 into train / validate / test with a fixed seed.

How, so that memory does not grow with the rows read (the full Amazon corpus is about
40 times the seed's 4.6 M reviews, and an mw1.small worker has 2 GB):

* **pass 1** streams the reader's blocks into ``PARTITIONS`` partitions by a hash of
  the customer id, so each customer's rows, in file order, sit in one partition.
  Video ratings are counted on the way. Partitions wait in memory until
  ``memory_rows`` rows are buffered, then go to Arrow IPC files in a temporary
  folder (local disk);
* **pass 2** takes one partition at a time: counts its customers, filters, drops
  duplicates (polars, on a few million rows at most), and keeps only integer codes:
  9 bytes per row left;
* the kept rows become one sorted ``int64`` key each, ``(customer, video, rating)``
  packed, which gives the canonical order the seeded shuffle starts from. The
  splits are written from the keys in chunks.

Memory: the ids of the customers and videos (each once), one partition, and 16
bytes per row left after filtering (about a third of the rows read, on the seed).
Row counts at each step are logged and returned.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

log = logging.getLogger(__name__)

PARTITIONS = 64
MEMORY_ROWS = 2_000_000  # rows buffered before pass 1 spills its partitions to disk (about 40 bytes each)
VIDEO_COUNT_ROWS = 500_000  # per-block video counts held before they are merged
CHUNK_ROWS = 500_000  # rows per chunk when the splits are written out and encoded
SPLIT_NAMES = ("train", "validate", "test")
_EPOCH = np.datetime64("1970-01-01", "D")


class NoRowsLeftError(ValueError):
    """Filtering left nothing to train on."""


class _Dimensions:
    """One-hot sizes from the id lists (``customer_ids``, ``video_ids``) of the class using it."""

    customer_ids: object
    video_ids: object

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_videos(self) -> int:
        return len(self.video_ids)

    @property
    def feature_dim(self) -> int:
        return self.n_customers + self.n_videos


@dataclass
class Preprocessed(_Dimensions):
    """The filtered, deduplicated, indexed rows as sorted packed keys, and the split.

    ``keys`` holds ``(customer_index * n_videos + video_index) * 8 + star_rating`` per
    row, ascending (the canonical order). ``train_order`` lists the train rows in
    their shuffled order; ``validate_rows`` and ``test_rows`` in canonical order.
    """

    keys: np.ndarray
    train_order: np.ndarray
    validate_rows: np.ndarray
    test_rows: np.ndarray
    customer_ids: pa.Array  # customer_ids[i] is the id of customer index i
    video_ids: pa.Array
    counts: dict[str, int] = field(default_factory=dict)
    video_titles: pa.Array | None = None  # the title of each video's first review (None: no product_title column)

    def rows_of(self, split: str) -> np.ndarray:
        return {"train": self.train_order, "validate": self.validate_rows, "test": self.test_rows}[split]

    def iter_split(self, split: str, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The split's rows in order, as DataFrames of ``customer_index``, ``video_index`` (int32), ``star_rating`` (float32)."""
        rows = self.rows_of(split)
        for lo in range(0, len(rows), chunk_rows):
            yield self.decode(self.keys[rows[lo : lo + chunk_rows]])

    def split_frame(self, split: str) -> pd.DataFrame:
        chunks = list(self.iter_split(split))
        return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]

    def decode(self, keys: np.ndarray) -> pd.DataFrame:
        pair = keys >> 3
        return pd.DataFrame(
            {
                "customer_index": (pair // self.n_videos).astype(np.int32),
                "video_index": (pair % self.n_videos).astype(np.int32),
                "star_rating": (keys & 7).astype(np.float32),
            }
        )

    def train_rating_stats(self, like_threshold: int) -> tuple[float, float]:
        """Mean train rating and share of train ratings >= ``like_threshold``."""
        ratings = np.zeros(8, dtype=np.int64)
        for lo in range(0, len(self.train_order), CHUNK_ROWS):
            ratings += np.bincount(self.keys[self.train_order[lo : lo + CHUNK_ROWS]] & 7, minlength=8)
        ratings = ratings[:6]
        n = ratings.sum()
        return float(ratings @ np.arange(6) / n), float(ratings[like_threshold:].sum() / n)


@dataclass
class PreprocessResult(_Dimensions):
    """``Preprocessed`` with the splits as whole DataFrames (small inputs and tests)."""

    train: pd.DataFrame  # columns: customer_index, video_index, star_rating
    validate: pd.DataFrame
    test: pd.DataFrame
    customer_ids: np.ndarray
    video_ids: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def preprocess(
    reviews: pd.DataFrame,
    source: str = "<reviews>",
    min_customer_ratings: int = 5,
    min_video_ratings: int = 10,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 42,
) -> PreprocessResult:
    """``preprocess_blocks`` over one DataFrame (columns customer_id, product_id, star_rating, review_date)."""
    dates = reviews["review_date"]
    if not pd.api.types.is_datetime64_any_dtype(dates):
        dates = pd.to_datetime(dates, format="%Y-%m-%d")
    table = pa.table(
        {
            "customer_id": pa.array(reviews["customer_id"].astype(str).to_numpy(), pa.large_string()),
            "product_id": pa.array(reviews["product_id"].astype(str).to_numpy(), pa.large_string()),
            "star_rating": pa.array(reviews["star_rating"].to_numpy(dtype=np.int8)),
            "review_date": pa.array((dates.to_numpy().astype("datetime64[D]") - _EPOCH).astype(np.int32)),
        }
    )
    done = preprocess_blocks([table], source, min_customer_ratings, min_video_ratings, split, seed)
    return PreprocessResult(
        *(done.split_frame(name) for name in SPLIT_NAMES),
        customer_ids=np.asarray(done.customer_ids.to_pylist(), dtype=object),
        video_ids=np.asarray(done.video_ids.to_pylist(), dtype=object),
        counts=done.counts,
    )


def preprocess_blocks(
    blocks: Iterable[pl.DataFrame | pa.Table],
    source: str = "<reviews>",
    min_customer_ratings: int = 5,
    min_video_ratings: int = 10,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 42,
    memory_rows: int = MEMORY_ROWS,
) -> Preprocessed:
    """Filter, dedupe, index and split reviews given as blocks (``ReviewReader.frames()``), in file order."""
    if abs(sum(split) - 1.0) > 1e-9 or min(split) <= 0:
        raise ValueError(f"split fractions must be positive and sum to 1, got {split}")
    with tempfile.TemporaryDirectory(prefix="preprocess-") as spill:
        partitions = _Partitions(Path(spill), memory_rows)
        for block in blocks:
            partitions.add(block if isinstance(block, pl.DataFrame) else pl.from_arrow(block))
        counts: dict[str, int] = {"rows_read": partitions.rows}
        log.info("%s: %d rows read", source, partitions.rows)
        video_counts = partitions.video_counts()
        kept_videos = (
            video_counts.filter(pl.col("len") >= min_video_ratings)
            .drop("len")
            .sort("product_id")
            .with_row_index("video_code")
        )
        kept = [
            _filter_and_dedupe(frame, kept_videos.select("video_code", "product_id"), min_customer_ratings)
            for frame in partitions.frames()
        ]
    customers_seen = sum(k.customers_seen for k in kept)
    customers_kept = sum(k.customers_kept for k in kept)
    counts["rows_after_filter"] = sum(k.rows_after_filter for k in kept)
    log.info(
        "%s: %d rows left after keeping customers with >= %d ratings (%d of %d) and videos with >= %d (%d of %d)",
        source,
        counts["rows_after_filter"],
        min_customer_ratings,
        customers_kept,
        customers_seen,
        min_video_ratings,
        kept_videos.height,
        video_counts.height,
    )
    n_rows = sum(len(k.rating) for k in kept)
    counts["duplicates_dropped"] = counts["rows_after_filter"] - n_rows
    counts["rows_after_dedupe"] = n_rows
    log.info(
        "%s: %d duplicate customer-video pairs dropped, %d rows left", source, counts["duplicates_dropped"], n_rows
    )
    if n_rows == 0:
        raise NoRowsLeftError(
            f"{source}: no rows left after filtering ({counts['rows_read']} rows read; need customers with "
            f">= {min_customer_ratings} ratings of videos with >= {min_video_ratings} ratings)"
        )

    # Customers: the sorted ids of all partitions' present customers -> index.
    everyone = pl.concat(
        [
            pl.DataFrame({"customer_id": k.customers, "part": np.full(len(k.customers), p, np.int32)})
            for p, k in enumerate(kept)
        ]
    ).with_row_index("local")
    everyone = (
        everyone.with_columns(local=pl.col("local") - pl.col("local").min().over("part"))
        .sort("customer_id")
        .with_row_index("index")
    )
    customer_ids = everyone["customer_id"].to_arrow()
    global_index = [np.empty(len(k.customers), np.int64) for k in kept]
    for (part,), group in everyone.group_by("part"):
        global_index[part][group["local"].to_numpy()] = group["index"].to_numpy()
    # Videos: those left after filtering, in id order (kept_videos is sorted by id).
    present = np.zeros(kept_videos.height, dtype=bool)
    for k in kept:
        present[k.video_code] = True
    video_index = np.cumsum(present) - 1
    video_ids = kept_videos["product_id"].filter(pl.Series(present)).to_arrow()
    video_titles = None
    if "product_title" in kept_videos.columns:
        video_titles = kept_videos["product_title"].filter(pl.Series(present)).to_arrow()
    n_videos = len(video_ids)
    counts["customers"], counts["videos"] = len(customer_ids), n_videos
    log.info(
        "%s: %d customers and %d videos indexed (feature_dim %d)",
        source,
        len(customer_ids),
        n_videos,
        len(customer_ids) + n_videos,
    )

    keys = np.empty(n_rows, dtype=np.int64)
    at = 0
    while kept:
        k = kept.pop(0)  # freed as it is packed
        n = len(k.rating)
        pair = global_index.pop(0)[k.customer] * n_videos + video_index[k.video_code]
        keys[at : at + n] = pair * 8 + k.rating
        at += n
    # Canonical row order before shuffling, so the split depends on the data, not on file order.
    keys.sort()

    order = np.random.default_rng(seed).permutation(n_rows)
    n_train = round(split[0] * n_rows)
    n_validate = round(split[1] * n_rows)
    # Row numbers fit int32 below 2**31 rows: half the memory for the rest of the step.
    index_type = np.int32 if n_rows < 2**31 else np.int64
    train_order = order[:n_train].astype(index_type)
    validate_rows = np.sort(order[n_train : n_train + n_validate]).astype(index_type)
    test_rows = np.sort(order[n_train + n_validate :]).astype(index_type)
    del order
    # FM trains on its records in file order, with no shuffle between epochs (real jobs'
    # logs, shared/reference/fm-real-optimizer.md), so train keeps the seeded random
    # order: sorted by customer, each mini-batch would see only a handful of customers
    # (at the DAG's defaults, validation RMSE 0.99 instead of 0.92 on MovieLens-100K).
    # Validate and test keep the canonical order.
    for name, part in (("train", train_order), ("validate", validate_rows), ("test", test_rows)):
        counts[f"{name}_rows"] = len(part)
        if len(part) == 0:
            raise NoRowsLeftError(
                f"{source}: the {name} split is empty ({n_rows} rows after filtering are too few to split)"
            )
    log.info(
        "%s: split %d / %d / %d rows into train / validate / test (seed %d)",
        source,
        len(train_order),
        len(validate_rows),
        len(test_rows),
        seed,
    )
    return Preprocessed(keys, train_order, validate_rows, test_rows, customer_ids, video_ids, counts, video_titles)


class _Partitions:
    """Pass 1: rows by customer-id hash, buffered in memory, spilled to Arrow IPC files past ``memory_rows``."""

    def __init__(self, folder: Path, memory_rows: int) -> None:
        self.folder = folder
        self.memory_rows = memory_rows
        self.buffered: list[list[pl.DataFrame]] = [[] for _ in range(PARTITIONS)]
        self.spilled: list[list[Path]] = [[] for _ in range(PARTITIONS)]
        self.buffered_rows = 0
        self.rows = 0
        self.video_count_parts: list[pl.DataFrame] = []

    def add(self, block: pl.DataFrame) -> None:
        if block.height == 0:
            return
        self.rows += block.height
        if "product_title" in block.columns:  # titles go no further than the per-video table
            self.video_count_parts.append(block.group_by("product_id").agg(pl.len(), pl.col("product_title").first()))
            block = block.drop("product_title")
        else:
            self.video_count_parts.append(block.group_by("product_id").len())
        if sum(part.height for part in self.video_count_parts) >= VIDEO_COUNT_ROWS + self.video_count_parts[0].height:
            self._merge_video_counts()
        # polars' hash is stable within a polars version (pinned); it only decides
        # which partition a customer lands in, never the results.
        part = (block["customer_id"].hash(seed=0) % PARTITIONS).cast(pl.UInt32)
        for (p,), rows in block.with_columns(part=part).partition_by("part", as_dict=True, include_key=False).items():
            self.buffered[p].append(rows)
        self.buffered_rows += block.height
        if self.buffered_rows >= self.memory_rows:
            self._spill()

    def _spill(self) -> None:
        for p, frames in enumerate(self.buffered):
            if frames:
                path = self.folder / f"part{p:03d}-{len(self.spilled[p]):05d}.arrow"
                pl.concat(frames).write_ipc(path)
                self.spilled[p].append(path)
        self.buffered = [[] for _ in range(PARTITIONS)]
        self.buffered_rows = 0
        self._merge_video_counts()

    def _merge_video_counts(self) -> None:
        if len(self.video_count_parts) > 1:
            # in block order, so first() is the title of the video's first review in the file
            titles = [pl.col("product_title").first()] if "product_title" in self.video_count_parts[0].columns else []
            merged = pl.concat(self.video_count_parts).group_by("product_id").agg(pl.col("len").sum(), *titles)
            self.video_count_parts = [merged]

    def video_counts(self) -> pl.DataFrame:
        """Ratings per video (``product_id``, ``len``) over every row read."""
        self._merge_video_counts()
        if not self.video_count_parts:
            return pl.DataFrame({"product_id": [], "len": []}, schema={"product_id": pl.String, "len": pl.UInt32})
        return self.video_count_parts[0]

    def frames(self) -> Iterator[pl.DataFrame]:
        """Each partition's rows in file order, one partition at a time."""
        for p in range(PARTITIONS):
            frames = [pl.read_ipc(path, memory_map=False) for path in self.spilled[p]] + self.buffered[p]
            self.buffered[p] = []
            if frames:
                yield pl.concat(frames)
            for path in self.spilled[p]:
                path.unlink()


@dataclass
class _Kept:
    """One partition after filtering and dedupe, as integer codes."""

    customers: pl.Series  # this partition's present customer ids, sorted; row codes index it
    customer: np.ndarray  # per row: index into ``customers``
    video_code: np.ndarray  # per row: index into the kept videos (sorted ids)
    rating: np.ndarray
    customers_seen: int
    customers_kept: int
    rows_after_filter: int


def _filter_and_dedupe(frame: pl.DataFrame, kept_videos: pl.DataFrame, min_customer_ratings: int) -> _Kept:
    per_customer = frame.group_by("customer_id").len()
    kept_customers = per_customer.filter(pl.col("len") >= min_customer_ratings).select("customer_id")
    rows = (
        frame.with_row_index("seq")  # file order within the partition
        .join(kept_customers, on="customer_id", how="semi")
        .join(kept_videos, on="product_id", how="inner")
    )
    # The latest review of a pair wins; file order breaks ties of the same date.
    deduped = rows.sort(["review_date", "seq"]).unique(["customer_id", "video_code"], keep="last")
    customers = deduped["customer_id"].unique().sort()
    codes = deduped.select(
        pl.col("customer_id").cast(pl.Enum(customers)).to_physical().alias("customer"),
        "video_code",
        "star_rating",
    )
    return _Kept(
        customers=customers,
        customer=codes["customer"].to_numpy(),  # uint32 (9 bytes per row in all)
        video_code=codes["video_code"].to_numpy(),
        rating=codes["star_rating"].to_numpy(),
        customers_seen=per_customer.height,
        customers_kept=kept_customers.height,
        rows_after_filter=rows.height,
    )
