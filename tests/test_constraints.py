"""The vendored MWAA constraints and the locally derived file stay in step."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

REQ = Path(__file__).resolve().parent.parent / "requirements"


def test_mwaa_constraints_are_verbatim() -> None:
    digest = hashlib.sha256((REQ / "constraints-3.3.1-py3.12.txt").read_bytes()).hexdigest()
    assert digest == "bff32ed535a2a0e876e5d6995f4df3a74787e758b32e8c70c300b148b810866a"


def test_py311_file_is_derived_and_records_each_difference() -> None:
    check = subprocess.run(
        [sys.executable, str(REQ / "derive_local_constraints.py"), "3.11", "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    mwaa = (REQ / "constraints-3.3.1-py3.12.txt").read_text().splitlines()
    local = (REQ / "constraints-3.3.1-py3.11.txt").read_text().splitlines()
    header = local[: local.index(mwaa[0])]  # what the script put before MWAA's own first line
    recorded = [line for line in header if line.startswith("#   ")]
    changed = sorted(set(local) - set(mwaa) - {line for line in local if line.startswith("#")})
    assert changed == ["numpy==2.4.6"]
    assert len(recorded) == 1 and recorded[0].startswith("#   numpy: MWAA 2.5.1 -> 2.4.6 (")


def test_requirements_txt_starts_with_mwaas_constraint_line() -> None:
    first = (REQ / "requirements.txt").read_text().splitlines()[0]
    assert (
        first
        == '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
    )
