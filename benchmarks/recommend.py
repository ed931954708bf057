"""The recommend step on a finished run: wall time, peak memory, and the ranking metrics against the baselines.

Run the workflow first (``make demo SCALE=1.0`` for the seed's size, or
``make demo INPUT=.cache/movielens-100k.tsv.gz`` for MovieLens 100K), then:

    .venv/bin/python benchmarks/recommend.py [--run output/runs/<run key>]   # default: the newest run

The step runs in a fresh process writing into a temporary copy of the run's
``recommendations/`` folder (the run itself is left as it is); peak memory is its VmHWM.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from video_recommender.layout import RunPaths
from video_recommender.recommend import recommend_step

run, model = RunPaths(Path(sys.argv[2])), Path(sys.argv[3])
start = time.perf_counter()
summary = recommend_step(run, model)
seconds = time.perf_counter() - start
hwm = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
print(json.dumps({"wall_seconds": seconds, "peak_mib": int(hwm.split()[1]) / 1024, **summary}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run folder (default: the newest under output/runs)")
    args = parser.parse_args()
    run = (args.run or max((REPO / "output" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)).resolve()
    models = sorted(run.glob("models/*/output/model.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit(f"{run}: no models/*/output/model.tar.gz; run the workflow first")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        copy.mkdir()
        (copy / "preprocessed").symlink_to(run / "preprocessed")
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(REPO / "plugins"), str(copy), str(models[-1])],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        shutil.rmtree(copy / "recommendations", ignore_errors=True)
    pre = json.loads((run / "preprocessed" / "summary.json").read_text())
    print(
        f"run {run.name}: {pre['n_customers']:,} customers x {pre['n_videos']:,} videos, model {models[-1].parent.parent.name}"
    )
    s = result["seconds"]
    print(
        f"recommend: {result['wall_seconds']:.1f} s wall (top-{result['per_customer']} for every customer "
        f"{s['recommend']:.1f} s, writing {s['write']:.1f} s, ranking evaluation {s['ranking']:.1f} s), "
        f"peak RSS {result['peak_mib']:,.0f} MiB"
    )
    ranking = result["ranking"]
    k = ranking["k"]
    print(
        f"ranking on the test split ({ranking['relevant']} relevant; {ranking['model']['customers_evaluated']:,} customers):"
    )
    names = [f"precision_at_{k}", f"recall_at_{k}", f"ndcg_at_{k}", f"map_at_{k}", "catalogue_coverage"]
    print(f"{'':<14}" + "".join(f"{n:>20}" for n in names))
    for who in ("model", "most_popular", "random"):
        print(f"{who:<14}" + "".join(f"{ranking[who][n]:>20.4f}" for n in names))


if __name__ == "__main__":
    main()
