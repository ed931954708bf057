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

import io
import logging
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import BinaryIO

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from isal import igzip
from isal.igzip_lib import IsalError

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
# review_date picks a customer's latest rating of a video; product_title labels the
# recommendations (kept as read, never a reason to skip a line).
OPTIONAL_COLUMNS: tuple[str, ...] = ("review_date", "product_title")
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
    """Return a binary stream of the decompressed bytes; gzip is detected by its magic bytes.

    gzip is inflated by ISA-L (``isal``, about 3 times zlib's speed).
    """
    buffered = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return igzip.IGzipFile(fileobj=buffered, mode="rb")
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


class ReviewReader:
    """An open reviews file as validated blocks of rows, with a report of what was skipped.

    Iterating yields one ``pyarrow.Table`` per block of about ``block_size`` bytes of
    text, in file order, with ``customer_id`` and ``product_id`` (strings), ``star_rating``
    (int8, 1-5), ``review_date`` (int32 days since 1970-01-01; 0 when the file has no
    such column) and, when the file has it, ``product_title`` (as read). ``report`` is
    complete once the iteration ends. A missing or doubled column raises
    ``ReviewsFormatError`` here, before any row is read.

    Each block is parsed by polars (multithreaded; about 4 times pyarrow's single
    thread on the seed's data) when it is structurally clean: every line has all the
    header's fields, valid UTF-8, no CR and no blank line. A block that is not is
    parsed again by pyarrow's serial reader, which skips and counts each bad line with
    its line number; either way every kept row's line number is known, so the value
    checks report true line numbers.
    """

    def __init__(self, raw: BinaryIO, source: str, block_size: int = 16 << 20) -> None:
        self.source = source
        self.block_size = block_size
        self.stream = _open_text_stream(raw)
        header = _read_header(self.stream, source)
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
        self.header = header
        self.wanted = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in header]
        self.report = ReadReport(source=source, columns=header)
        # polars reads these columns by position: the wanted ones, and the last one, which
        # is null exactly when a line has too few fields (or an empty last field).
        self._positions = sorted({header.index(c) for c in self.wanted} | {len(header) - 1})

    def __iter__(self) -> Iterator[pa.Table]:
        for frame in self.frames():
            yield frame.to_arrow()

    def frames(self) -> Iterator[pl.DataFrame]:
        """The blocks as polars DataFrames (what ``preprocess_blocks`` works on)."""
        try:
            for first_line, block, n_lines in self._blocks():
                parsed = self._parse_fast(block, n_lines)
                typed = None if parsed is None else _typed_if_clean(parsed)
                if typed is None:
                    if parsed is None:
                        table, line_of = self._parse_exact(block, first_line)
                    else:
                        table, line_of = _as_exact_strings(parsed), partial(np.add, first_line)
                    typed = pl.from_arrow(self._validate(table, line_of))
                self.report.rows_kept += typed.height
                yield typed
        except (pa.ArrowInvalid, OSError, EOFError, IsalError) as exc:
            raise ReviewsFormatError(f"{self.source}: cannot parse the file: {exc}") from exc
        log.info(self.report.summary())

    def _blocks(self) -> Iterator[tuple[int, bytes, int]]:
        """(first line number, block of whole lines, its line count), read ahead by a background thread.

        Reading, inflating and counting lines release the GIL, so they run on a second
        core while this thread parses the previous block. (isal's own ``igzip_threaded``
        does the inflating in a thread too, but copies every byte twice more on the way.)
        """
        ahead: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item: object) -> None:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def read_ahead() -> None:
            first_line = 2  # the header is line 1
            try:
                while not stop.is_set():
                    block = self._next_block(first_line)
                    if not block:
                        break
                    newlines = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))
                    n_lines = newlines + (not block.endswith(b"\n"))
                    hand_over((first_line, block, n_lines))
                    first_line += n_lines
                hand_over(None)
            except BaseException as exc:  # handed to the consuming thread, which raises it
                hand_over(exc)

        reader = threading.Thread(target=read_ahead, name=f"read-ahead {self.source}", daemon=True)
        reader.start()
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            reader.join()

    def _next_block(self, first_line: int) -> bytes:
        """About ``block_size`` bytes of whole lines (the last line may lack its newline at the end of the file)."""
        block = self.stream.read(self.block_size)
        if block and not block.endswith(b"\n"):
            rest = self.stream.readline(MAX_LINE_BYTES)
            if len(rest) == MAX_LINE_BYTES and not rest.endswith(b"\n"):
                line = first_line + block.count(b"\n")
                raise ReviewsFormatError(
                    f"{self.source}: line {line} is longer than {MAX_LINE_BYTES:,} bytes; expected lines of "
                    "tab-separated fields (is this a reviews file?)"
                )
            block += rest
        return block

    def _parse_fast(self, block: bytes, n_lines: int) -> pl.DataFrame | None:
        """The block's wanted columns (strings, null when empty) by polars, or None when it needs the exact reader."""
        if b"\r" in block:
            return None
        try:
            frame = pl.read_csv(
                block,
                has_header=False,
                separator="\t",
                quote_char=None,
                columns=self._positions,
                infer_schema=False,
                truncate_ragged_lines=False,
            )
        except (pl.exceptions.PolarsError, UnicodeDecodeError):
            return None  # e.g. a line with too many fields, or invalid UTF-8
        last = f"column_{len(self.header)}"
        if frame.height != n_lines or frame[last].null_count():
            return None
        return frame.select(pl.col(f"column_{self.header.index(c) + 1}").alias(c) for c in self.wanted)

    def _parse_exact(self, block: bytes, first_line: int) -> tuple[pa.Table, Callable[[np.ndarray], np.ndarray]]:
        """The block by pyarrow's serial reader: bad lines skipped and counted by their line numbers."""
        bad_rows: list[int] = []

        def on_invalid_row(row: pacsv.InvalidRow) -> str:
            bad_rows.append(row.number if row.number is not None else -1)
            return "skip"

        reader = pacsv.open_csv(
            io.BufferedReader(_LoneCarriageReturns(io.BytesIO(block)), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(
                column_names=self.header, block_size=max(len(block) + 1, 1 << 16), use_threads=False
            ),
            parse_options=pacsv.ParseOptions(
                # Blank lines are parsed (as rows of empty fields) rather than dropped
                # uncounted, so they are reported and every later line number is right.
                delimiter="\t",
                quote_char=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=self.wanted,
                column_types={c: pa.string() for c in self.wanted},
                strings_can_be_null=False,
                check_utf8=False,  # checked per column instead: one bad byte must not fail the block
            ),
        )
        table = reader.read_all()
        # Parser row numbers start at 1 for the block's first line.
        skipped = np.sort(np.asarray([first_line + n - 1 for n in bad_rows if n >= 0], dtype=np.int64))
        if bad_rows:
            self.report.note(
                f"lines without {len(self.header)} tab-separated fields", skipped[:MAX_EXAMPLES].tolist(), len(bad_rows)
            )
        # kept lines before the i-th skipped line = skipped[i] - first_line - i
        kept_before_skip = skipped - first_line - np.arange(len(skipped))

        def line_of(kept_rows: np.ndarray) -> np.ndarray:
            return kept_rows + first_line + np.searchsorted(kept_before_skip, kept_rows, side="right")

        columns = {}
        not_utf8 = np.zeros(table.num_rows, dtype=bool)
        for name in self.wanted:
            columns[name], bad = _valid_utf8(table[name].combine_chunks())
            if bad is not None and name in ("customer_id", "product_id"):
                not_utf8[bad] = True  # (a bad rating or date is emptied and counted as such later)
        rows = np.flatnonzero(not_utf8)
        if len(rows):
            self.report.note(
                "lines whose customer_id or product_id is not UTF-8", line_of(rows[:MAX_EXAMPLES]).tolist(), len(rows)
            )
            keep = pa.array(~not_utf8)
            columns = {name: col.filter(keep) for name, col in columns.items()}
            return pa.table(columns), partial(_line_of_kept, line_of, np.flatnonzero(~not_utf8))
        return pa.table(columns), line_of

    def _validate(self, table: pa.Table, line_of: Callable[[np.ndarray], np.ndarray]) -> pa.Table:
        """The typed columns of the rows whose values are usable; the others counted by reason."""
        n = table.num_rows
        customer = pc.utf8_trim_whitespace(table["customer_id"])
        product = pc.utf8_trim_whitespace(table["product_id"])
        rating_text = pc.utf8_trim_whitespace(table["star_rating"])
        rating, rating_ok = _ratings(rating_text)
        ids_ok = pc.and_(pc.greater(pc.utf8_length(customer), 0), pc.greater(pc.utf8_length(product), 0))
        if "review_date" in table.column_names:
            date, date_ok = _dates(pc.utf8_trim_whitespace(table["review_date"]))
        else:
            date, date_ok = pa.array(np.zeros(n, dtype=np.int32)), np.ones(n, dtype=bool)
        ok_ids = ids_ok.to_numpy(zero_copy_only=False)
        # Each skipped line is counted once, under the first reason that applies.
        empty = [
            pc.equal(pc.utf8_length(col), 0).to_numpy(zero_copy_only=False) for col in (customer, product, rating_text)
        ]
        blank = empty[0] & empty[1] & empty[2]
        for reason, bad in (
            ("blank lines", blank),
            ("lines with an empty customer_id or product_id", ~ok_ids & ~blank),
            ("lines whose star_rating is not an integer from 1 to 5", ok_ids & ~rating_ok),
            ("lines whose review_date is not a date (YYYY-MM-DD)", ok_ids & rating_ok & ~date_ok),
        ):
            rows = np.flatnonzero(bad)
            if len(rows):
                self.report.note(reason, line_of(rows[:MAX_EXAMPLES]).tolist(), len(rows))
        columns = {
            # large_string, as polars hands them over (the exact reader's are cast to match)
            "customer_id": customer.cast(pa.large_string()),
            "product_id": product.cast(pa.large_string()),
            "star_rating": rating,
            "review_date": date,
        }
        if "product_title" in table.column_names:
            columns["product_title"] = table["product_title"].cast(pa.large_string())
        typed = pa.table(columns)
        keep = ok_ids & rating_ok & date_ok
        return typed if keep.all() else typed.filter(pa.array(keep))


# What a block must hold, value by value, to be typed by polars alone. The tests are
# narrower than what the checks in ``_validate`` accept, never wider: ids whose first
# and last characters are printable ASCII (nothing any definition of whitespace would
# trim), ratings of exactly one digit 1-5, dates of exactly YYYY-MM-DD in 1000-2999
# (which both date parsers read the same way). A block with any other value is checked
# value by value by ``_validate``, as the exact reader's blocks are.
_UNTRIMMED = r"^[!-~](?:.*[!-~])?$"
_ONE_TO_FIVE = ["1", "2", "3", "4", "5"]
_ISO_DATE = r"^[12][0-9]{3}-[01][0-9]-[0-3][0-9]$"


def _typed_if_clean(frame: pl.DataFrame) -> pl.DataFrame | None:
    """The typed block (as ``_validate`` makes it) when every value passes the narrow tests above, else None."""
    clean = (
        pl.col("customer_id").str.contains(_UNTRIMMED)
        & pl.col("product_id").str.contains(_UNTRIMMED)
        & pl.col("star_rating").is_in(_ONE_TO_FIVE)
    )
    if "review_date" in frame.columns:
        clean = clean & pl.col("review_date").str.contains(_ISO_DATE)
        days = pl.col("review_date").str.to_date("%Y-%m-%d", strict=False).cast(pl.Int32)
    else:
        days = pl.lit(0, dtype=pl.Int32)
    title = [pl.col("product_title").fill_null("")] if "product_title" in frame.columns else []
    typed = frame.select(
        "customer_id",
        "product_id",
        pl.col("star_rating").cast(pl.Int8, strict=False),
        days.alias("review_date"),  # null where not a calendar date (2015-02-30)
        *title,
        clean.fill_null(False).alias("clean"),  # an empty field is null: not clean
    )
    if typed["clean"].all() and typed["review_date"].null_count() == 0:
        return typed.drop("clean")
    return None


def _as_exact_strings(frame: pl.DataFrame) -> pa.Table:
    """A fast-parsed block as the exact reader hands it to ``_validate``: empty fields as empty strings."""
    return pa.table({c: pc.fill_null(frame[c].to_arrow(), "") for c in frame.columns})


def _line_of_kept(line_of: Callable[[np.ndarray], np.ndarray], kept: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return line_of(kept[rows])


# A longer line is not a review (the real ones are at most a few KiB).
MAX_LINE_BYTES = 16 << 20
_EPOCH = np.datetime64("1970-01-01", "D")


def _ratings(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """int8 ratings (0 where invalid) and which are an ASCII integer from 1 to 5."""
    try:  # the common case: every value casts; then only the range is left to check
        rating = pc.cast(text, pa.int8())
        values = rating.to_numpy(zero_copy_only=False)
        return rating, (values >= 1) & (values <= 5)
    except pa.ArrowInvalid:
        pass
    # ASCII digits only: utf8_is_digit also passes "²" or a 20-digit number, which then
    # break the integer cast.
    ok = pc.fill_null(pc.match_substring_regex(text, r"^0*[1-5]$"), False)
    rating = pc.if_else(ok, text, pa.scalar("0")).cast(pa.int64()).cast(pa.int8())
    return rating, ok.to_numpy(zero_copy_only=False)


def _dates(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Days since 1970-01-01 (int32, 0 where invalid) and which values are real YYYY-MM-DD dates.

    The dedupe keeps the latest review by comparing these days: only a real date in the
    corpus's format compares as the date it is.
    """
    try:  # arrow's ISO-8601 cast: exactly YYYY-MM-DD, and a real calendar date
        days = pc.cast(text, pa.date32()).cast(pa.int32())
        return days, np.ones(len(text), dtype=bool)
    except pa.ArrowInvalid:
        pass
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2015-02-30 over to 2015-03-02: a real date is one that prints back as itself.
    ok = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text), False)
    days = pc.fill_null(pc.if_else(ok, parsed, None).cast(pa.date32()).cast(pa.int32()), 0)
    return days, ok.to_numpy(zero_copy_only=False)


def read_reviews(raw: BinaryIO, source: str, block_size: int = 32 << 20) -> tuple[pd.DataFrame, ReadReport]:
    """All of an open reviews file as one DataFrame (for small files and tests), and the report.

    Columns as ``ReviewReader`` yields them, with ``review_date`` as ``datetime64``.
    """
    reader = ReviewReader(raw, source, block_size=block_size)
    tables = list(reader)
    if not tables:
        return _empty_frame(), reader.report
    table = pa.concat_tables(tables)
    frame = pd.DataFrame(
        {
            "customer_id": table["customer_id"].to_numpy(),
            "product_id": table["product_id"].to_numpy(),
            "star_rating": table["star_rating"].to_numpy().astype(np.int8),
            "review_date": _EPOCH + table["review_date"].to_numpy().astype("timedelta64[D]"),
        }
    )
    if "product_title" in table.column_names:
        frame["product_title"] = table["product_title"].to_numpy()
    return frame, reader.report


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype=object),
            "product_id": pd.Series([], dtype=object),
            "star_rating": pd.Series([], dtype=np.int8),
            "review_date": pd.Series([], dtype="datetime64[s]"),
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
    for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):  # rare: only for a block with bad bytes
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            values.append("")
            bad.append(i)
    return pa.array(values, pa.string()), np.asarray(bad, dtype=np.int64)
