"""Peak memory of preprocess + prepare in one process (an Airflow worker), by data scale.

MWAA's smallest workers (mw1.small) have 2 GB. This runs the two data steps of the
workflow on generated data at each scale in a fresh process and prints the peak
resident memory, so you can tell when to run them as SageMaker Processing jobs.

    .venv/bin/python benchmarks/worker_memory.py [--scales 0.05 0.25 1.0 2.5 10.0]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from video_recommender import steps
from video_recommender.layout import RunPaths

def hwm_mib():
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

source = Path(sys.argv[3])
run = RunPaths(Path(sys.argv[2]))
start = time.perf_counter()
summary = steps.preprocess_step(source, run)
steps.prepare_step(run)
print(summary["read"]["rows_kept"], summary["counts"]["train_rows"], round(hwm_mib()), round(time.perf_counter() - start, 1))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.05, 0.25, 1.0, 2.5, 10.0])
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "plugins"))
    from video_recommender.data.synthetic import generate_table, write_reviews_tsv_gz
    from video_recommender.storage import open_atomically

    print(f"{'scale':>6}{'reviews':>12}{'train rows':>12}{'peak RSS MiB':>14}{'seconds':>9}")
    for scale in args.scales:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "reviews.tsv.gz"
            table, _ = generate_table(scale=scale, seed=42)
            with open_atomically(source) as fh:
                write_reviews_tsv_gz(table, fh)
            del table
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(REPO / "plugins"), str(Path(tmp) / "run"), str(source)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            reviews, train, peak, seconds = done.stdout.split()
            print(f"{scale:>6}{int(reviews):>12,}{int(train):>12,}{int(peak):>14,}{float(seconds):>9.1f}")


if __name__ == "__main__":
    main()
