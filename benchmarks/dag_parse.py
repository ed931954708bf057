"""How long the DAG file takes to parse, as MWAA's DAG processor does every 30 s.

Prints the DagBag fill time in a fresh interpreter, with Airflow itself already
imported (the processor has it loaded), median of several runs.

    .venv/bin/python benchmarks/dag_parse.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE = f"""
import time, airflow.sdk
from airflow.models import DagBag
start = time.perf_counter()
bag = DagBag(dag_folder={str(REPO / "dags" / "recommender_workflow.py")!r})
assert not bag.import_errors, bag.import_errors
print(time.perf_counter() - start)
"""


def main() -> None:
    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    }
    env["PYTHONPATH"] = str(REPO / "plugins")
    times = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    print(
        f"DAG parse (DagBag fill, cold plugin imports): median {statistics.median(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms over {len(times)} runs"
    )


if __name__ == "__main__":
    main()
