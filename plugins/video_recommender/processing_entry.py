"""Entry point of the preprocess / prepare SageMaker Processing jobs (no Airflow).

SageMaker downloads the job's inputs under ``/opt/ml/processing`` and uploads its
outputs from there when the job ends; this script runs the very functions the
Airflow worker runs in ``data_steps=worker`` mode, on that local folder laid out as a
run folder (``layout.RunPaths``):

    code/     video_recommender.zip and this script (input "code")
    run/input/reviews.tsv.gz          preprocess: the reviews (input) or generated here (output)
    run/preprocessed/                 preprocess: output; prepare: input
    run/recordio/                     prepare: output

    python3 processing_entry.py preprocess --root /opt/ml/processing/run [--generate SCALE] [--seed N]
    python3 processing_entry.py prepare --root /opt/ml/processing/run --predictor-type regressor [--shards N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

CODE = Path(__file__).resolve().parent
# What the data steps import beyond numpy and pandas, at the versions the Airflow worker
# has (MWAA's constraints; isal pinned in requirements.txt). SageMaker's scikit-learn
# image lacks some of them; tests/test_processing.py checks these pins against those files.
RUNTIME_PACKAGES = {
    "pyarrow": ["pyarrow==25.0.0"],  # reads and writes Parquet, validates the reviews
    "polars": ["polars==1.43.2", "polars-runtime-32==1.43.2"],  # parses the reviews, partitions, dedupes
    "isal": ["isal==1.9.1"],  # inflates and deflates gzip
}


def _import_path() -> None:
    bundle = CODE / "video_recommender.zip"
    if bundle.exists():
        sys.path.insert(0, str(bundle))  # zipimport: the package is pure Python
    missing = [
        pin for module, pins in RUNTIME_PACKAGES.items() if importlib.util.find_spec(module) is None for pin in pins
    ]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="preprocess or prepare, as a SageMaker Processing job")
    parser.add_argument("step", choices=["preprocess", "prepare"])
    parser.add_argument("--root", type=Path, required=True, help="the local run folder")
    parser.add_argument("--generate", type=float, default=None, help="preprocess: generate reviews at this scale")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--predictor-type", default="regressor")
    parser.add_argument("--shards", type=int, default=1, help="prepare: RecordIO files for train and validate")
    args = parser.parse_args(argv)
    _import_path()
    import logging

    from video_recommender import steps
    from video_recommender.layout import RunPaths

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run = RunPaths(args.root)
    if args.step == "preprocess":
        if args.generate is not None:
            steps.generate_input(run, args.generate, args.seed)
        reviews = next((p for p in sorted(run.input.parent.iterdir()) if p.is_file()), None)
        if reviews is None:
            raise SystemExit(f"{run.input.parent}: no reviews file")
        result = steps.preprocess_step(reviews, run, seed=args.seed)
    else:
        result = steps.prepare_step(run, args.predictor_type, args.shards)
    print(json.dumps({"step": args.step, "counts": result.get("counts") or result.get("rows")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
