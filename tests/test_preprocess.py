"""Pre-processing: thresholds, dedupe, sequential indices, 60/20/20 split, counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from video_recommender.data.preprocess import NoRowsLeftError, preprocess


def reviews(rows: list[tuple[str, str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "star_rating", "review_date"])


def grid(n_customers: int, n_videos: int) -> list[tuple[str, str, int, str]]:
    return [
        (f"c{c:03d}", f"v{v:03d}", 1 + (c + v) % 5, "2015-01-01") for c in range(n_customers) for v in range(n_videos)
    ]


def test_thresholds_drop_sparse_customers_and_videos() -> None:
    rows = grid(12, 10)
    rows += [("lonely", f"v{v:03d}", 3, "2015-01-01") for v in range(4)]  # 4 ratings < 5
    rows += [(f"c{c:03d}", "rare", 3, "2015-01-01") for c in range(9)]  # 9 ratings < 10
    result = preprocess(reviews(rows))
    assert "lonely" not in result.customer_ids and "rare" not in result.video_ids
    assert result.counts["rows_read"] == len(rows)
    assert result.counts["rows_after_filter"] == 120
    assert result.n_customers == 12 and result.n_videos == 10 and result.feature_dim == 22


def test_duplicates_keep_the_latest_review() -> None:
    rows = grid(10, 10)
    rows.append(("c000", "v000", 5, "2016-01-01"))  # a later re-review of a pair
    rows.insert(0, ("c001", "v001", 1, "2010-01-01"))  # an earlier one
    result = preprocess(reviews(rows))
    assert result.counts["duplicates_dropped"] == 2
    all_rows = pd.concat([result.train, result.validate, result.test])
    assert len(all_rows) == 100
    rating = all_rows.set_index(["customer_index", "video_index"])["star_rating"]
    assert rating[0, 0] == 5.0  # the 2016 review won
    assert rating[1, 1] == float(1 + 2 % 5)  # the grid's 2015 review beat the 2010 one


def test_indices_are_sequential_and_sorted_by_id() -> None:
    result = preprocess(reviews(grid(10, 10)))
    assert list(result.customer_ids) == sorted(result.customer_ids)
    all_rows = pd.concat([result.train, result.validate, result.test])
    assert sorted(all_rows["customer_index"].unique()) == list(range(10))
    assert sorted(all_rows["video_index"].unique()) == list(range(10))


def test_split_is_60_20_20_disjoint_and_seeded() -> None:
    frame = reviews(grid(20, 25))
    a, b, c = preprocess(frame, seed=1), preprocess(frame, seed=1), preprocess(frame, seed=2)
    assert (len(a.train), len(a.validate), len(a.test)) == (300, 100, 100)
    keys = [set(zip(p.customer_index, p.video_index, strict=True)) for p in (a.train, a.validate, a.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test.equals(c.test)
    # File order does not change the split.
    shuffled = frame.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(preprocess(shuffled, seed=1).test, a.test)


def test_train_keeps_a_seeded_random_order() -> None:
    # FM trains in file order, so the train split must not be sorted by customer.
    frame = reviews(grid(20, 25))
    a, b = preprocess(frame, seed=1), preprocess(frame, seed=1)
    pd.testing.assert_frame_equal(a.train, b.train)
    customers = a.train["customer_index"].to_numpy()
    assert (np.diff(customers) != 0).mean() > 0.8  # neighbours are mostly different customers
    for part in (a.validate, a.test):
        assert part.sort_values(["customer_index", "video_index"]).index.equals(part.index)


def test_labels_are_float32_ratings() -> None:
    result = preprocess(reviews(grid(10, 10)))
    assert result.train["star_rating"].dtype == np.float32
    assert set(result.train["star_rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_nothing_left_names_the_source() -> None:
    with pytest.raises(NoRowsLeftError, match=r"in\.tsv: no rows left after filtering \(3 rows read"):
        preprocess(reviews(grid(1, 3)), source="in.tsv")


def reference(frame: pd.DataFrame, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The documented algorithm written the obvious way on whole pandas columns: an independent oracle."""
    per_customer = frame["customer_id"].map(frame["customer_id"].value_counts())
    per_video = frame["product_id"].map(frame["product_id"].value_counts())
    kept = frame[(per_customer >= 5) & (per_video >= 10)].assign(seq=lambda f: np.arange(len(f)))
    dates = pd.to_datetime(kept["review_date"], format="%Y-%m-%d")
    latest = (
        kept.assign(date=dates).sort_values(["date", "seq"]).drop_duplicates(["customer_id", "product_id"], keep="last")
    )
    customers = {c: i for i, c in enumerate(sorted(latest["customer_id"].unique()))}
    videos = {v: i for i, v in enumerate(sorted(latest["product_id"].unique()))}
    indexed = pd.DataFrame(
        {
            "customer_index": latest["customer_id"].map(customers).astype(np.int32),
            "video_index": latest["product_id"].map(videos).astype(np.int32),
            "star_rating": latest["star_rating"].astype(np.float32),
        }
    ).sort_values(["customer_index", "video_index"], ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(indexed))
    n_train, n_validate = round(0.6 * len(indexed)), round(0.2 * len(indexed))
    train, validate, test = np.split(order, [n_train, n_train + n_validate])
    return (
        indexed.iloc[train].reset_index(drop=True),
        indexed.iloc[np.sort(validate)].reset_index(drop=True),
        indexed.iloc[np.sort(test)].reset_index(drop=True),
    )


def messy_reviews(seed: int = 0) -> pd.DataFrame:
    """Generated reviews plus re-reviews on later, earlier and the same dates (ties broken by file order)."""
    from video_recommender.data.synthetic import generate_reviews

    frame, _ = generate_reviews(scale=0.01, seed=seed)
    frame = frame[["customer_id", "product_id", "star_rating", "review_date"]]
    rng = np.random.default_rng(seed)
    again = frame.sample(n=3000, random_state=seed).copy()
    again["star_rating"] = rng.integers(1, 6, len(again)).astype(np.int8)
    same_day, other_day = again.iloc[:1000], again.iloc[1000:]
    other_day = other_day.assign(review_date=pd.to_datetime(other_day["review_date"]).add(
        pd.to_timedelta(rng.integers(-400, 400, len(other_day)), unit="D")).dt.strftime("%Y-%m-%d"))  # fmt: skip
    mixed = pd.concat([frame, same_day, other_day], ignore_index=True)
    return mixed.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("memory_rows", [10_000_000, 5_000], ids=["in memory", "spilled to disk"])
def test_blocks_and_spills_give_exactly_the_reference_result(memory_rows: int) -> None:
    import pyarrow as pa

    from video_recommender.data.preprocess import preprocess_blocks

    frame = messy_reviews()
    days = (pd.to_datetime(frame["review_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)).astype(np.int32)
    table = pa.table(
        {
            "customer_id": pa.array(frame["customer_id"].to_numpy(), pa.large_string()),
            "product_id": pa.array(frame["product_id"].to_numpy(), pa.large_string()),
            "star_rating": pa.array(frame["star_rating"].to_numpy(np.int8)),
            "review_date": pa.array(days),
        }
    )
    blocks = [table.slice(lo, 3_001) for lo in range(0, len(table), 3_001)]  # many reader blocks
    done = preprocess_blocks(blocks, memory_rows=memory_rows)
    expected = reference(frame)
    assert done.counts["duplicates_dropped"] > 1000  # the re-reviews survived the filters often enough to matter
    for name, want in zip(("train", "validate", "test"), expected, strict=True):
        pd.testing.assert_frame_equal(done.split_frame(name), want)
    assert done.counts["rows_read"] == len(frame)
    assert done.counts["rows_after_dedupe"] == sum(len(part) for part in expected)


def blocks_of(table, rows: int = 3_001) -> list:
    return [table.slice(lo, rows) for lo in range(0, len(table), rows)]


def test_each_video_keeps_the_title_of_its_first_review_and_nothing_else_changes(monkeypatch) -> None:
    import pyarrow as pa

    from video_recommender.data import preprocess as module

    monkeypatch.setattr(module, "VIDEO_COUNT_ROWS", 2_000)  # merge the per-block counts many times
    frame = messy_reviews()
    days = (pd.to_datetime(frame["review_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)).astype(np.int32)
    columns = {
        "customer_id": pa.array(frame["customer_id"].to_numpy(), pa.large_string()),
        "product_id": pa.array(frame["product_id"].to_numpy(), pa.large_string()),
        "star_rating": pa.array(frame["star_rating"].to_numpy(np.int8)),
        "review_date": pa.array(days),
    }
    titled = pa.table({**columns, "product_title": pa.array([f"{p} seen at {i}" for i, p in enumerate(frame["product_id"])], pa.large_string())})  # fmt: skip
    with_titles = module.preprocess_blocks(blocks_of(titled), memory_rows=5_000)
    without = module.preprocess_blocks(blocks_of(pa.table(columns)), memory_rows=5_000)
    first_row = frame.reset_index().groupby("product_id")["index"].min()
    ids = with_titles.video_ids.to_pylist()
    assert with_titles.video_titles.to_pylist() == [f"{p} seen at {first_row[p]}" for p in ids]
    assert without.video_titles is None and without.video_ids.to_pylist() == ids
    assert (with_titles.keys == without.keys).all() and (with_titles.train_order == without.train_order).all()
