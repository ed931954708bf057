"""Reading reviews files: gzip or plain, bad lines counted with line numbers, clear errors."""

from __future__ import annotations

import gzip
import io

import pandas as pd
import pytest

from video_recommender.data.reviews import REVIEW_COLUMNS, ReviewsFormatError, read_reviews

HEADER = "\t".join(REVIEW_COLUMNS)


def line(customer: str, product: str, rating: str, date: str = "2015-08-31") -> str:
    fields = dict.fromkeys(REVIEW_COLUMNS, "x")
    fields.update(customer_id=customer, product_id=product, star_rating=rating, review_date=date)
    return "\t".join(fields[c] for c in REVIEW_COLUMNS)


GOOD = [line("c1", "p1", "5"), line("c2", "p2", "3"), line("c3", "p1", "1")]


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_reads_gzip_and_plain_alike(compress: bool) -> None:
    text = "\n".join([HEADER, *GOOD]) + "\n"
    raw = gzip.compress(text.encode()) if compress else text.encode()
    frame, report = read_reviews(io.BytesIO(raw), "reviews.tsv")
    assert frame["customer_id"].tolist() == ["c1", "c2", "c3"]
    assert frame["star_rating"].tolist() == [5, 3, 1]
    assert report.rows_kept == 3 and report.lines_skipped == 0


def test_malformed_lines_are_skipped_counted_and_located() -> None:
    lines = [
        HEADER,  # line 1
        GOOD[0],  # 2
        "only\tthree\tfields",  # 3: wrong field count
        line("c9", "p9", "six"),  # 4: rating not a number
        line("", "p3", "4"),  # 5: empty customer
        GOOD[1],  # 6
        line("c8", "p8", "0"),  # 7: rating out of range
        GOOD[2] + "\textra",  # 8: 16 fields
        GOOD[2],  # 9
    ]
    frame, report = read_reviews(io.BytesIO(("\n".join(lines) + "\n").encode()), "bad.tsv")
    assert len(frame) == 3
    assert report.lines_skipped == 5
    assert report.skipped["lines without 15 tab-separated fields"] == 2
    assert report.examples["lines without 15 tab-separated fields"] == [3, 8]
    assert report.examples["lines whose star_rating is not an integer from 1 to 5"] == [4, 7]
    assert report.examples["lines with an empty customer_id or product_id"] == [5]
    summary = report.summary()
    assert "5 lines skipped" in summary and "bad.tsv" in summary


def test_line_numbers_stay_right_across_reader_blocks() -> None:
    lines = [HEADER] + [line(f"c{i}", "p1", "5") for i in range(3000)]
    lines[1500] = "broken"  # line 1501
    lines[2500] = line("c", "p", "9")  # line 2501, after the parser skipped one line
    _, report = read_reviews(io.BytesIO(("\n".join(lines) + "\n").encode()), "big.tsv", block_size=4096)
    assert report.examples["lines without 15 tab-separated fields"] == [1501]
    assert report.examples["lines whose star_rating is not an integer from 1 to 5"] == [2501]


def test_missing_column_names_the_file_and_the_column() -> None:
    header = HEADER.replace("star_rating", "stars")
    with pytest.raises(ReviewsFormatError, match=r"my\.tsv: header line has no column 'star_rating'"):
        read_reviews(io.BytesIO(f"{header}\n".encode()), "my.tsv")


def test_empty_and_corrupt_files_fail_clearly() -> None:
    with pytest.raises(ReviewsFormatError, match=r"empty\.tsv: the file is empty"):
        read_reviews(io.BytesIO(b""), "empty.tsv")
    whole = gzip.compress(("\n".join([HEADER, *GOOD * 200]) + "\n").encode())
    truncated = whole[: len(whole) - 12]
    with pytest.raises(ReviewsFormatError, match=r"cut\.tsv\.gz: cannot"):
        read_reviews(io.BytesIO(truncated), "cut.tsv.gz")


def test_header_only_gives_no_rows() -> None:
    frame, report = read_reviews(io.BytesIO(f"{HEADER}\n".encode()), "h.tsv")
    assert len(frame) == 0 and report.rows_kept == 0


def test_a_duplicate_needed_column_is_an_error_naming_it() -> None:
    header = HEADER + "\tstar_rating"  # a second star_rating column: which one is meant?
    text = "\n".join([header, GOOD[0] + "\t1"]) + "\n"
    with pytest.raises(ReviewsFormatError) as caught:
        read_reviews(io.BytesIO(text.encode()), "reviews.tsv")
    assert str(caught.value) == (
        "reviews.tsv: header line has the column 'star_rating' more than once (columns 8, 16); expected each column once"
    )


def test_a_utf8_bom_before_the_header_is_dropped() -> None:
    columns = ("customer_id", *[c for c in REVIEW_COLUMNS if c != "customer_id"])  # customer_id first
    values = {"customer_id": "c1", "product_id": "p1", "star_rating": "4", "review_date": "2015-08-31"}
    rows = ["\t".join(values.get(c, "x") for c in columns)]
    text = "\ufeff" + "\n".join(["\t".join(columns), *rows]) + "\n"
    frame, report = read_reviews(io.BytesIO(text.encode()), "bom.tsv")
    assert frame["customer_id"].tolist() == ["c1"] and report.columns[0] == "customer_id"


def test_a_file_without_a_header_line_fails_with_a_short_message() -> None:
    with pytest.raises(ReviewsFormatError) as caught:
        read_reviews(io.BytesIO(b"\x00" * (1 << 20)), "zeros.bin")
    message = str(caught.value)
    assert message.startswith("zeros.bin: no header line in the first 65,536 bytes")
    assert len(message) < 300
    wide = "\t".join(f"col{i}" * 20 for i in range(500))  # under the bound, but 500 long names
    with pytest.raises(ReviewsFormatError) as caught:
        read_reviews(io.BytesIO((wide + "\n").encode()), "wide.tsv")
    assert len(str(caught.value)) < 1200 and str(caught.value).endswith(", ...")


def test_odd_ratings_are_skipped_and_counted_with_their_line_not_fatal() -> None:
    lines = [
        HEADER,  # 1
        GOOD[0],  # 2
        line("c5", "p5", "²"),  # 3: a Unicode digit (utf8_is_digit says yes)
        line("c6", "p6", "12345678901234567890"),  # 4: digits, but past int64
        line("c7", "p7", "٣"),  # 5: Arabic-Indic three
        GOOD[1],  # 6
    ]
    frame, report = read_reviews(io.BytesIO(("\n".join(lines) + "\n").encode()), "odd.tsv")
    assert frame["customer_id"].tolist() == ["c1", "c2"]
    assert report.examples["lines whose star_rating is not an integer from 1 to 5"] == [3, 4, 5]


def test_bad_dates_are_skipped_and_counted_and_good_ones_kept() -> None:
    lines = [
        HEADER,  # 1
        line("c1", "p1", "5", "2015-08-31"),  # 2
        line("c2", "p1", "4", "09/01/2015"),  # 3: not YYYY-MM-DD (would sort before 2015-... as text)
        line("c3", "p1", "3", "2015-13-45"),  # 4: no such date
        line("c4", "p1", "3", ""),  # 5: empty
        line("c5", "p1", "2", "2015-02-28"),  # 6
    ]
    frame, report = read_reviews(io.BytesIO(("\n".join(lines) + "\n").encode()), "dates.tsv")
    assert frame["customer_id"].tolist() == ["c1", "c5"]
    assert report.skipped["lines whose review_date is not a date (YYYY-MM-DD)"] == 3
    assert report.examples["lines whose review_date is not a date (YYYY-MM-DD)"] == [3, 4, 5]


def test_line_numbers_count_blank_lines() -> None:
    lines = [HEADER, GOOD[0], "", "", line("c9", "p9", "7"), GOOD[1]]  # the bad rating is on line 5
    frame, report = read_reviews(io.BytesIO(("\n".join(lines) + "\n").encode()), "blank.tsv")
    assert frame["customer_id"].tolist() == ["c1", "c2"]
    assert report.examples["lines whose star_rating is not an integer from 1 to 5"] == [5]
    assert report.skipped["blank lines"] == 2 and report.examples["blank lines"] == [3, 4]


def test_invalid_utf8_in_an_id_is_a_counted_skip_with_its_true_line() -> None:
    rows = [HEADER.encode(), GOOD[0].encode(), line("c\udcff", "p1", "5").encode("utf-8", "surrogateescape"),
            GOOD[1].encode(), line("c4", "p\udcfe\udcfd", "4").encode("utf-8", "surrogateescape"), GOOD[2].encode()]  # fmt: skip
    raw = b"\n".join(rows) + b"\n"  # invalid bytes on lines 3 and 5
    frame, report = read_reviews(io.BytesIO(raw), "latin.tsv", block_size=64)
    assert frame["customer_id"].tolist() == ["c1", "c2", "c3"]
    assert report.examples["lines whose customer_id or product_id is not UTF-8"] == [3, 5]


def test_a_lone_carriage_return_stays_inside_its_field() -> None:
    title_with_cr = line("c5", "p5", "4").replace("\tx\tx\t", "\tbroken\rtitle\tx\t", 1)
    lines = [HEADER, GOOD[0], title_with_cr, line("c9", "p9", "9"), GOOD[1]]  # the bad rating is on line 4
    text = "\r\n".join(lines) + "\r\n"  # Windows line ends too
    frame, report = read_reviews(io.BytesIO(text.encode()), "cr.tsv")
    assert frame["customer_id"].tolist() == ["c1", "c5", "c2"]
    assert report.lines_skipped == 1
    assert report.examples["lines whose star_rating is not an integer from 1 to 5"] == [4]


def test_clean_blocks_take_the_fast_parser_and_agree_with_the_exact_one(monkeypatch) -> None:
    """polars parses clean blocks; pyarrow's serial reader re-parses a block with a bad line. Same rows either way."""
    from video_recommender.data import reviews

    lines = [HEADER] + [line(f"c{i}", f"p{i % 7}", str(1 + i % 5), f"20{10 + i % 6}-0{1 + i % 9}-1{i % 10}") for i in range(4000)]  # fmt: skip
    lines[3001] = "broken"  # line 3002
    lines[3500] = line("c", "p", "5", "2015-02-30")  # line 3501: not a calendar date
    raw = ("\n".join(lines) + "\n").encode()
    paths: list[str] = []
    fast, exact = reviews.ReviewReader._parse_fast, reviews.ReviewReader._parse_exact

    def spy_fast(self, block, n_lines):
        parsed = fast(self, block, n_lines)
        paths.append("fast" if parsed is not None else "exact")
        return parsed

    monkeypatch.setattr(reviews.ReviewReader, "_parse_fast", spy_fast)
    frame, report = read_reviews(io.BytesIO(raw), "mixed.tsv", block_size=8192)
    assert "fast" in paths and "exact" in paths
    assert report.examples["lines without 15 tab-separated fields"] == [3002]
    assert report.examples["lines whose review_date is not a date (YYYY-MM-DD)"] == [3501]

    monkeypatch.setattr(reviews.ReviewReader, "_parse_fast", lambda self, block, n_lines: None)
    exact_frame, exact_report = read_reviews(io.BytesIO(raw), "mixed.tsv", block_size=8192)
    pd.testing.assert_frame_equal(frame, exact_frame)
    assert report.as_dict() == exact_report.as_dict()
    assert len(frame) == 3998 and exact is reviews.ReviewReader._parse_exact


def test_an_endless_line_is_a_short_error_with_its_number(monkeypatch) -> None:
    from video_recommender.data import reviews

    monkeypatch.setattr(reviews, "MAX_LINE_BYTES", 1000)
    raw = (HEADER + "\n" + GOOD[0] + "\n" + "y" * 5000).encode()
    with pytest.raises(ReviewsFormatError, match=r"long\.tsv: line 3 is longer than 1,000 bytes") as caught:
        read_reviews(io.BytesIO(raw), "long.tsv", block_size=100)
    assert len(str(caught.value)) < 200


TRICKY_VALUES = {
    # \x1f: arrow trims it, polars' strip_chars does not
    "customer_id": [" c1", "c1 ", "\u00a0c1", "c1\u3000", "c1\u0085", "\u200bc1", "c1\x1f", "é", "c", ""],
    "star_rating": ["05", " 3", "3 ", "+3", "\u00b2", "\u0663", "6", "0", "", "3.0"],
    "review_date": ["2015-9-01", "2015-02-30", "0999-01-01", "2015-01-01 ", "20150101", "2015-01-01T00:00",
                    "", "3015-01-01", "1900-02-29", "2000-02-29", "\u0661\u0662\u0663\u0664-\u0660\u0661-\u0660\u0661"],
}  # fmt: skip


@pytest.mark.parametrize(("column", "value"), [(c, v) for c, values in TRICKY_VALUES.items() for v in values], ids=repr)
def test_the_polars_typed_path_agrees_with_the_exact_checks_on_unusual_values(monkeypatch, column, value) -> None:
    """Clean blocks are typed by polars alone; any value outside its narrow tests goes to the exact checks.

    Either way the rows and the report are those of the exact reader, value by value.
    """
    from video_recommender.data import reviews

    fields = {"customer_id": "c0", "product_id": "p0", "star_rating": "4", "review_date": "2015-08-31"}
    fields[column] = value
    lines = [HEADER] + [line(f"c{i}", "p1", "5") for i in range(20)]
    lines.insert(10, line(fields["customer_id"], fields["product_id"], fields["star_rating"], fields["review_date"]))
    raw = ("\n".join(lines) + "\n").encode()
    typed = reviews._typed_if_clean
    outcomes: list[bool] = []
    monkeypatch.setattr(
        reviews, "_typed_if_clean", lambda frame: outcomes.append(typed(frame) is not None) or typed(frame)
    )
    frame, report = read_reviews(io.BytesIO(raw), "odd.tsv")
    # [] when polars cannot parse the block at all (an empty last field reads as a short line)
    assert outcomes in ([], [False]) or (outcomes == [True] and report.lines_skipped == 0)
    monkeypatch.setattr(reviews.ReviewReader, "_parse_fast", lambda self, block, n_lines: None)
    exact_frame, exact_report = read_reviews(io.BytesIO(raw), "odd.tsv")
    pd.testing.assert_frame_equal(frame, exact_frame)
    assert report.as_dict() == exact_report.as_dict()


def test_a_clean_block_is_typed_by_polars_alone(monkeypatch) -> None:
    from video_recommender.data import reviews

    lines = [HEADER] + [line(f"c{i}", f"p{i % 3}", str(1 + i % 5), f"20{10 + i % 9}-0{1 + i % 9}-2{i % 9}") for i in range(50)]  # fmt: skip
    monkeypatch.setattr(reviews.ReviewReader, "_validate", lambda *a: pytest.fail("a clean block went to _validate"))
    frame, report = read_reviews(io.BytesIO(("\n".join(lines) + "\n").encode()), "clean.tsv")
    assert len(frame) == 50 and report.lines_skipped == 0
    assert frame["review_date"].iloc[1] == pd.Timestamp("2011-02-21")
    assert frame["star_rating"].tolist()[:6] == [1, 2, 3, 4, 5, 1]
