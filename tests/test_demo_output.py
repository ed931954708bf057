"""`make demo`'s terminal: one screen of summary, Airflow's logs in a file, no error line, metrics.json last."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_demo_prints_one_screen_and_keeps_airflows_logs_in_a_file(tmp_path: Path) -> None:
    env = {**os.environ, "RECOMMENDER_STORAGE_ROOT": (tmp_path / "output").as_uri()}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_demo.py"), "--scale", "0.01",
         "--airflow-home", str(tmp_path / "airflow-home")],
        capture_output=True, text=True, env=env, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) <= 30 and done.stderr == "", (len(lines), done.stderr[-2000:])
    assert not [line for line in lines if "[error" in line or "[warning" in line]
    assert lines[-1].endswith("metrics.json") and Path(lines[-1]).exists()
    text = done.stdout
    assert "-> success" in text and "NDCG@10 model" in text and "   customer " in text and "report: " in text
    log = (REPO / ".demo" / "airflow.log").read_text()
    assert "[DAG TEST] end task task_id=evaluate" in log and "[error" not in log  # no error-level line at all
