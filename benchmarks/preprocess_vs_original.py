"""Pre-processing + prepare: the original sample's algorithm vs this project's steps, same input, one run.

The original (aws-samples/sagemaker-ml-workflow-with-apache-airflow, src/pipeline/
preprocess.py and prepare.py) is re-implemented here as it worked, to compare on this
machine: pandas ``read_csv`` of every column, the long-tail filter by merges,
``drop_duplicates``, customer/video indexes by merges, a shuffled 60/20/20 split
staged as CSV files, then the CSVs read back, one-hot rows built in a scipy
``lil_matrix``, and RecordIO-protobuf written by SageMaker SDK v2's
``write_spmatrix_to_sparse_tensor``: the SDK's own function when ``--original-python``
names an interpreter that has it, else ``recordio_encode.sdk_v2_writer``, which takes
the same per-row steps and is calibrated against the real one (same bytes; 2.96 s vs
2.65 s for 100,000 rows, on one run of benchmarks/recordio_encode.py).

Each side runs in a fresh process; the figures are its wall time and peak resident
memory (VmHWM). ``--scale 10`` (about 46 M reviews) with ``--only project`` shows the
project's peak does not grow with the rows.

    .venv/bin/pip install scipy==1.18.0   # the original's lil_matrix (MWAA's constraints pin it)
    .venv/bin/python benchmarks/preprocess_vs_original.py [--scale 1.0] [--only project|original] [--repeat 3]
    # the SDK's own writer (a throwaway venv, never the project's; see recordio_encode.py):
    SAGEMAKER_SUPPRESS_V2_WARNING=1 .venv/bin/python benchmarks/preprocess_vs_original.py \
        --original-python /tmp/sdkv2/bin/python
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "benchmarks"))


def peak_mib() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_original(source: Path, work: Path) -> dict:
    import numpy as np
    import pandas as pd
    from recordio_encode import real_sdk_writer, sdk_v2_writer
    from scipy.sparse import lil_matrix

    start = time.perf_counter()
    df = pd.read_csv(source, sep="\t", on_bad_lines="skip")
    df = df[["customer_id", "product_id", "star_rating", "product_title"]]
    customers = df["customer_id"].value_counts()
    products = df["product_id"].value_counts()
    customers = customers[customers >= 5]
    products = products[products >= 10]
    reduced = df.merge(pd.DataFrame({"customer_id": customers.index})).merge(
        pd.DataFrame({"product_id": products.index})
    )
    reduced = reduced.drop_duplicates(["customer_id", "product_id"])
    customers = reduced["customer_id"].value_counts()
    products = reduced["product_id"].value_counts()
    reduced = reduced.merge(
        pd.DataFrame({"customer_id": customers.index, "customer": np.arange(len(customers))})
    ).merge(pd.DataFrame({"product_id": products.index, "product": np.arange(len(products))}))
    ratings = reduced[["customer", "product", "star_rating"]]
    shuffled = ratings.sample(frac=1, random_state=42)
    cut = [0, int(0.6 * len(ratings)), int(0.8 * len(ratings)), len(ratings)]
    parts = [shuffled.iloc[lo:hi] for lo, hi in itertools.pairwise(cut)]
    for name, part in zip(("train", "validate", "test"), parts, strict=True):
        part.to_csv(work / f"{name}.csv", index=False)
    preprocess_seconds = time.perf_counter() - start

    frames = {name: pd.read_csv(work / f"{name}.csv") for name in ("train", "validate", "test")}
    everything = pd.concat(frames.values())
    n_customers = np.unique(everything["customer"].values).shape[0]
    n_cols = n_customers + np.unique(everything["product"].values).shape[0]
    write = real_sdk_writer() or sdk_v2_writer
    for name, frame in frames.items():
        # the original's convert_sparse_matrix: a float64 lil_matrix cast to float32,
        # both ones set by fancy indexing
        values = frame.values
        matrix = lil_matrix((len(frame), n_cols)).astype("float32")
        matrix[np.arange(len(frame)), values[:, 0]] = 1
        matrix[np.arange(len(frame)), n_customers + values[:, 1]] = 1
        labels = values[:, 2].astype("float32")
        # train and validate in one object each, test in chunks of 10,000 rows
        chunk = len(frame) if name != "test" else 10_000
        for i, lo in enumerate(range(0, len(frame), chunk)):
            buf = io.BytesIO()
            piece = matrix if chunk == len(frame) else matrix[lo : lo + chunk]
            write(buf, piece, labels[lo : lo + chunk])
            (work / f"{name}_{i}.protobuf").write_bytes(buf.getvalue())
    return {
        "seconds": time.perf_counter() - start,
        "preprocess_seconds": preprocess_seconds,
        "rows": {name: len(frame) for name, frame in frames.items()},
        "peak_mib": peak_mib(),
        "writer": "SDK v2 itself" if write is not sdk_v2_writer else "SDK v2 steps, re-implemented",
    }


def run_project(source: Path, work: Path) -> dict:
    from video_recommender import steps
    from video_recommender.layout import RunPaths

    run = RunPaths(work / "run")
    start = time.perf_counter()
    summary = steps.preprocess_step(source, run)
    preprocess_seconds = time.perf_counter() - start
    steps.prepare_step(run)
    return {
        "seconds": time.perf_counter() - start,
        "preprocess_seconds": preprocess_seconds,
        "rows": {name: summary["counts"][f"{name}_rows"] for name in ("train", "validate", "test")},
        "peak_mib": peak_mib(),
    }


def column_text_bytes(column) -> int:
    """Bytes of a column's values as TSV text (numbers formatted as the writer does)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = column if pa.types.is_string(column.type) else column.cast(pa.string())
    return int(pc.sum(pc.binary_length(text)).as_py() or 0)


def with_long_bodies(table, mean_bytes: int, seed: int = 7):
    """The table with ``review_body`` replaced by text of about ``mean_bytes`` per review.

    The generator's bodies are one short sentence; the real corpus's seed-scale file
    (4 M reviews) is 1.24 GB of text, about 300 bytes per line. Bodies are drawn from a
    pool of 20,000 word sequences, so gzip sees text, not repeats.
    """
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    words = np.array(["the", "video", "great", "story", "acting", "watch", "not", "worth", "season", "plot",
                      "loved", "boring", "kids", "funny", "ending", "characters", "again", "movie", "good", "bad"])  # fmt: skip
    lengths = rng.integers(1, 2 * mean_bytes // 6, 20_000)  # about 6 bytes per word with its space
    pool = pa.array([" ".join(words[rng.integers(0, len(words), k)]) for k in lengths])
    body = pool.take(rng.integers(0, len(pool), table.num_rows))
    return table.set_column(table.column_names.index("review_body"), "review_body", body)


def child(side: str, source: Path, work: Path, python: str) -> dict:
    done = subprocess.run(
        [python, __file__, "--child", side, "--input", str(source), "--work", str(work)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="generated input size (1.0 = the original's)")
    parser.add_argument("--input", type=Path, help="a reviews .tsv.gz to use instead of generated data")
    parser.add_argument("--only", choices=("project", "original"))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side; the ratio is of the medians")
    parser.add_argument(
        "--body-bytes", type=int,
        help="review bodies of about this many bytes (150 gives the real corpus's 1.24 GB of text at scale 1.0)",
    )  # fmt: skip
    parser.add_argument(
        "--original-python", default=sys.executable,
        help="interpreter for the original's side, e.g. a venv with sagemaker==2.257.7 to time the SDK's own writer",
    )  # fmt: skip
    parser.add_argument("--child", choices=("project", "original"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (run_project if args.child == "project" else run_original)(args.input, args.work)
        print(json.dumps(result))
        return

    from video_recommender.data.synthetic import generate_table, write_reviews_tsv_gz
    from video_recommender.storage import open_atomically

    with tempfile.TemporaryDirectory() as tmp:
        source = args.input
        if source is None:
            source = Path(tmp) / "reviews.tsv.gz"
            generated = time.perf_counter()
            table, summary = generate_table(args.scale, seed=42)
            if args.body_bytes:
                table = with_long_bodies(table, args.body_bytes)
            with open_atomically(source) as fh:
                write_reviews_tsv_gz(table, fh)
            text_bytes = sum(len(c) for c in table.column_names) + (table.num_rows + 1) * table.num_columns
            text_bytes += sum(column_text_bytes(table[c]) for c in table.column_names)
            del table
            print(
                f"input: {summary.reviews:,} generated reviews (scale {args.scale}), "
                f"{source.stat().st_size / 1e6:.0f} MB gzip ({text_bytes / 1e9:.2f} GB of text), "
                f"generated in {time.perf_counter() - generated:.1f} s"
            )
        sides = [args.only] if args.only else ["original", "project"]
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for attempt in range(args.repeat):  # sides alternate, so a noisy spell hits both
            for side in sides:
                work = Path(tmp) / f"{side}-{attempt}"
                work.mkdir()
                python = args.original_python if side == "original" else sys.executable
                runs[side].append(child(side, source, work, python))
                shutil.rmtree(work)
        print(f"{'':<34}{'wall s':>9}{'of it preprocess s':>20}{'peak RSS MiB':>14}   train/validate/test rows")
        results = {}
        for side, done in runs.items():
            name = "original sample's algorithm" if side == "original" else "this project's steps"
            for i, r in enumerate(done):
                rows = "/".join(f"{n:,}" for n in r["rows"].values())
                label = name if len(done) == 1 else f"{name} #{i + 1}"
                print(
                    f"{label:<34}{r['seconds']:>9.1f}{r['preprocess_seconds']:>20.1f}{r['peak_mib']:>14,.0f}   {rows}"
                )
            results[side] = sorted(done, key=lambda r: r["seconds"])[len(done) // 2]  # the median run
        if "original" in results:
            print(f"the original's RecordIO writer: {results['original']['writer']}")
        if len(results) == 2:
            ratio = results["original"]["seconds"] / results["project"]["seconds"]
            median = "" if args.repeat == 1 else f" (median runs of {args.repeat})"
            print(f"speed-up: {ratio:.1f}x wall{median}; peak memory {results['project']['peak_mib']:,.0f} MiB "
                  f"vs {results['original']['peak_mib']:,.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
