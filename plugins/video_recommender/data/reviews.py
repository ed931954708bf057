"""Read Amazon customer-reviews TSV files (gzip or plain), streamed and validated.

The files have a header line with 15 tab-separated columns and no quoting. The
workflow needs three of them (``customer_id``, ``product_id``, ``star_rating``)
and uses ``review_date`` to keep a customer's latest rating of a video. Lines
that do not fit are skipped and counted by reason, with example line numbers;
a missing needed column or an empty file is an error naming the file.

pyarrow's streaming CSV reader does the parsing (a C++ parser; a Python loop
would be about 20 times slower on the 4-million-line original data set).
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

log = logging.getLogger(__name__)

REVIEW_COLUMNS: tuple[str, ...] = (
    "marketplace",
    "customer_id",
    "review_id",
    "product_id",
    "product_parent",
    "product_title",
    "product_category",
    "star_rating",
    "helpful_votes",
    "total_votes",
    "vine",
    "verified_purchase",
    "review_headline",
    "review_body",
    "review_date",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", "product_id", "star_rating")
OPTIONAL_COLUMNS: tuple[str, ...] = ("review_date",)
MAX_EXAMPLES = 5


class ReviewsFormatError(ValueError):
    """The input cannot be used at all (not a reviews file, missing column, no rows)."""


@dataclass
class ReadReport:
    """What reading one file found: rows kept, lines skipped per reason, example line numbers."""

    source: str
    columns: list[str]
    rows_kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)

    @property
    def lines_skipped(self) -> int:
        return sum(self.skipped.values())

    def note(self, reason: str, line_numbers: list[int], count: int | None = None) -> None:
        self.skipped[reason] += len(line_numbers) if count is None else count
        ex = self.examples.setdefault(reason, [])
        ex.extend(line_numbers[: MAX_EXAMPLES - len(ex)])

    def summary(self) -> str:
        if not self.skipped:
            return f"{self.source}: {self.rows_kept} rows read, no lines skipped"
        parts = [
            f"{n} {reason} (e.g. line {', '.join(map(str, self.examples.get(reason, [])))})"
            for reason, n in self.skipped.most_common()
        ]
        return f"{self.source}: {self.rows_kept} rows read, {self.lines_skipped} lines skipped: " + "; ".join(parts)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_kept": self.rows_kept,
            "lines_skipped": self.lines_skipped,
            "skipped_by_reason": dict(self.skipped),
            "example_lines": self.examples,
        }


_LONE_CR = re.compile(rb"\r(?!\n)")


class _LoneCarriageReturns(io.RawIOBase):
    """The stream with every CR that does not end a line (CRLF) turned into a space.

    The reviews have no quoting, and pyarrow's parser ends a line at a lone CR, so a
    stray CR inside a text field (found in real review bodies) would split its line in
    two and shift every later line number. A CR of CRLF is kept. Costs one scan for
    b"\r" per block when there is none.
    """

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.carry = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = len(buffer) - len(self.carry)
        data = self.carry + (self.inner.read(want) if want > 0 else b"")
        self.carry = b""
        tail = b""
        if data.endswith(b"\r"):  # is it CRLF? Only the next byte can say
            self.carry = self.inner.read(1)
            data, tail = data[:-1], (b"\r" if self.carry == b"\n" else b" ")
        if b"\r" in data:
            data = _LONE_CR.sub(b" ", data)
        out = data + tail
        buffer[: len(out)] = out
        return len(out)


def _open_text_stream(raw: BinaryIO) -> BinaryIO:
    """Return a binary stream of the decompressed bytes; gzip is detected by its magic bytes."""
    buffered = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    return buffered


# The real header is 15 names in about 200 bytes: anything past this is not a reviews file
# (a binary or one-line file), and reading it unbounded would put all of it in the error.
MAX_HEADER_BYTES = 64 << 10
BOM = "\ufeff"


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _read_header(stream: BinaryIO, source: str) -> list[str]:
    """The header's column names: at most ``MAX_HEADER_BYTES``, a UTF-8 BOM dropped."""
    try:
        header_line = stream.readline(MAX_HEADER_BYTES + 1)
    except (OSError, EOFError) as exc:  # e.g. a truncated or corrupt gzip file
        raise ReviewsFormatError(f"{source}: cannot read the file: {exc}") from exc
    if len(header_line) > MAX_HEADER_BYTES:
        raise ReviewsFormatError(
            f"{source}: no header line in the first {MAX_HEADER_BYTES:,} bytes (it starts "
            f"{_short(header_line[:16].decode('utf-8', errors='replace'))}); expected a tab-separated "
            "header line of the Amazon customer-reviews columns"
        )
    text = header_line.decode("utf-8", errors="replace").rstrip("\r\n").removeprefix(BOM)
    if text == "":
        raise ReviewsFormatError(
            f"{source}: the file is empty; expected a header line with the columns {', '.join(REVIEW_COLUMNS)}"
        )
    return text.split("\t")


def read_reviews(raw: BinaryIO, source: str, block_size: int = 8 << 20) -> tuple[pd.DataFrame, ReadReport]:
    """Read the columns the workflow needs from an open reviews file.

    Returns a DataFrame with ``customer_id`` and ``product_id`` (strings), ``star_rating``
    (int8, 1-5) and ``review_date`` (string, empty when the file has none), in file order,
    and a report of what was skipped.
    """
    stream = _open_text_stream(raw)
    header = _read_header(stream, source)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        shown = ", ".join(_short(c) for c in header[:15]) + (", ..." if len(header) > 15 else "")
        raise ReviewsFormatError(
            f"{source}: header line has no column {', '.join(repr(c) for c in missing)}; "
            f"expected the tab-separated Amazon customer-reviews columns ({', '.join(REVIEW_COLUMNS)}), "
            f"found {len(header)} column(s): {shown}"
        )
    twice = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if header.count(c) > 1]
    if twice:  # which one holds the data? Refuse rather than train on a guess.
        raise ReviewsFormatError(
            f"{source}: header line has the column {', '.join(repr(c) for c in twice)} more than once "
            f"(columns {', '.join(str(i + 1) for i, c in enumerate(header) if c in twice)}); "
            "expected each column once"
        )
    unknown = [c for c in REVIEW_COLUMNS if c not in header]
    if unknown:
        log.warning("%s: header lacks the unused column(s) %s; reading on", source, ", ".join(unknown))
    wanted = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in header]

    report = ReadReport(source=source, columns=header)
    bad_field_count: list[int] = []
    bad_field_total = 0

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        nonlocal bad_field_total
        bad_field_total += 1
        bad_field_count.append(row.number if row.number is not None else -1)
        return "skip"

    frames: list[pd.DataFrame] = []
    kept_before = 0  # data rows kept by the parser so far (to map a row back to its line number)
    value_errors: list[tuple[str, np.ndarray]] = []
    try:
        if not stream.peek(1):  # a header and no data lines
            report.rows_kept = 0
            log.info(report.summary())
            return _empty_frame(), report
        reader = pacsv.open_csv(
            io.BufferedReader(_LoneCarriageReturns(stream), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(column_names=header, block_size=block_size, use_threads=False),
            parse_options=pacsv.ParseOptions(
                # Blank lines are parsed (as rows of empty fields) rather than dropped
                # uncounted, so they are reported and every later line number is right.
                delimiter="\t",
                quote_char=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types={c: pa.string() for c in wanted},
                strings_can_be_null=False,
                check_utf8=False,  # checked per batch instead: one bad byte must not fail the whole file
            ),
        )
        for batch in reader:
            frame, problems = _validate_batch(batch, kept_before)
            kept_before += batch.num_rows
            frames.append(frame)
            value_errors.extend(problems)
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise ReviewsFormatError(f"{source}: cannot parse the file: {exc}") from exc

    # Line numbers: parser row numbers count the header as line 1 (we pass it as data-free
    # column names, so the first data line is row 1 -> line 2).
    skipped_lines = np.sort(np.asarray([n + 1 for n in bad_field_count if n >= 0], dtype=np.int64))
    if bad_field_total:
        report.note(
            f"lines without {len(header)} tab-separated fields", skipped_lines[:MAX_EXAMPLES].tolist(), bad_field_total
        )
    for reason, kept_rows in value_errors:
        report.note(reason, _line_numbers(kept_rows[:MAX_EXAMPLES], skipped_lines).tolist(), len(kept_rows))

    reviews = pd.concat(frames, ignore_index=True) if frames else _empty_frame()
    report.rows_kept = len(reviews)
    log.info(report.summary())
    return reviews, report


def _line_numbers(kept_rows: np.ndarray, skipped_lines: np.ndarray) -> np.ndarray:
    """Map 0-based indices of rows the parser kept to 1-based file line numbers."""
    # kept lines before the i-th skipped line = skipped_lines[i] - 2 - i
    kept_before_skip = skipped_lines - 2 - np.arange(len(skipped_lines))
    return kept_rows + 2 + np.searchsorted(kept_before_skip, kept_rows, side="right")


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype=object),
            "product_id": pd.Series([], dtype=object),
            "star_rating": pd.Series([], dtype=np.int8),
            "review_date": pd.Series([], dtype=object),
        }
    )


def _valid_utf8(column: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """The column with invalid UTF-8 values made empty, and which rows they were (None: all valid)."""
    try:
        column.validate(full=True)  # C++: checks every value's UTF-8
        return column, None
    except pa.ArrowInvalid:
        pass
    values, bad = [], []
    for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):  # rare: only for a batch with bad bytes
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            values.append("")
            bad.append(i)
    return pa.array(values, pa.string()), np.asarray(bad, dtype=np.int64)


def _validate_batch(batch: pa.RecordBatch, first_row: int) -> tuple[pd.DataFrame, list[tuple[str, np.ndarray]]]:
    columns, not_utf8 = {}, np.zeros(batch.num_rows, dtype=bool)
    for name in batch.schema.names:
        columns[name], bad = _valid_utf8(batch.column(name))
        if bad is not None and name in ("customer_id", "product_id"):
            not_utf8[bad] = True  # (a bad rating or date is emptied and counted as such below)
    customer = pc.utf8_trim_whitespace(columns["customer_id"])
    product = pc.utf8_trim_whitespace(columns["product_id"])
    rating_text = pc.utf8_trim_whitespace(columns["star_rating"])
    # ASCII digits only: utf8_is_digit also passes "²" or a 20-digit number, which then
    # break the integer cast and with it the whole file.
    rating_ok = pc.fill_null(pc.match_substring_regex(rating_text, r"^0*[1-5]$"), False)
    rating = pc.if_else(rating_ok, rating_text, pa.scalar("0")).cast(pa.int64())
    ids_ok = pc.and_(pc.greater(pc.utf8_length(customer), 0), pc.greater(pc.utf8_length(product), 0))
    if "review_date" in batch.schema.names:
        date = pc.utf8_trim_whitespace(columns["review_date"])
        # The dedupe keeps the latest review by comparing these strings: only a real
        # YYYY-MM-DD date (the corpus's format) compares as the date it is.
        parsed = pc.strptime(date, format="%Y-%m-%d", unit="s", error_is_null=True)
        iso = pc.match_substring_regex(date, r"^\d{4}-\d{2}-\d{2}$")
        date_ok = pc.fill_null(pc.and_(iso, pc.is_valid(parsed)), False)
    else:
        date = pa.array([""] * batch.num_rows, pa.string())
        date_ok = pa.array(np.ones(batch.num_rows, dtype=bool))

    ok_ids = ids_ok.to_numpy(zero_copy_only=False)
    ok_rating = rating_ok.to_numpy(zero_copy_only=False)
    ok_date = date_ok.to_numpy(zero_copy_only=False)
    problems: list[tuple[str, np.ndarray]] = []
    # Each skipped line is counted once, under the first reason that applies.
    empty = [
        pc.equal(pc.utf8_length(col), 0).to_numpy(zero_copy_only=False) for col in (customer, product, rating_text)
    ]
    blank = empty[0] & empty[1] & empty[2]
    for reason, bad in (
        ("blank lines", blank & ~not_utf8),
        ("lines whose customer_id or product_id is not UTF-8", not_utf8),
        ("lines with an empty customer_id or product_id", ~ok_ids & ~blank & ~not_utf8),
        ("lines whose star_rating is not an integer from 1 to 5", ok_ids & ~ok_rating),
        ("lines whose review_date is not a date (YYYY-MM-DD)", ok_ids & ok_rating & ~ok_date),
    ):
        rows = np.flatnonzero(bad)
        if len(rows):
            problems.append((reason, rows + first_row))
    keep = pa.array(ok_ids & ok_rating & ok_date & ~not_utf8)
    frame = pd.DataFrame(
        {
            "customer_id": customer.filter(keep).to_numpy(zero_copy_only=False),
            "product_id": product.filter(keep).to_numpy(zero_copy_only=False),
            "star_rating": rating.filter(keep).to_numpy(zero_copy_only=False).astype(np.int8),
            "review_date": date.filter(keep).to_numpy(zero_copy_only=False),
        }
    )
    return frame, problems
