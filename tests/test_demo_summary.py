"""The demo's failure summary names the reason, not the chain of causes before it."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _tee():
    spec = importlib.util.spec_from_file_location("run_demo", REPO / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ErrorLineTee(io.StringIO())


CHAINED = """Traceback (most recent call last):
  File "storage.py", line 120, in write_atomically
NotADirectoryError: [Errno 20] Not a directory: '/tmp/rootfile/runs/r'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "tasks.py", line 55, in start
video_recommender.storage.StorageError: file:///tmp/rootfile/runs/r/run.json: cannot write (Not a directory)

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "task_runner.py", line 900, in run
airflow.exceptions.AirflowException: cannot start: RECOMMENDER_STORAGE_ROOT='file:///tmp/rootfile' is not writable
"""


def test_only_the_last_exception_of_a_chained_traceback_is_the_reason() -> None:
    tee = _tee()
    tee.write(CHAINED)
    assert tee.errors == [
        "AirflowException: cannot start: RECOMMENDER_STORAGE_ROOT='file:///tmp/rootfile' is not writable"
    ]


def test_two_failed_tasks_give_two_reasons() -> None:
    tee = _tee()
    tee.write("Traceback (most recent call last):\nValueError: first task's reason\n[info] next task\n")
    tee.write("Traceback (most recent call last):\nKeyError: second\n")
    assert tee.errors == ["ValueError: first task's reason", "KeyError: second"]
