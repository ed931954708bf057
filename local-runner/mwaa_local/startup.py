"""MWAA's startup-script rules (amazon-mwaa-docker-images, ``setup_environment.py``).

The script is sourced before requirements are installed and Airflow starts, has 5
minutes less 5 seconds, and exports of protected names are dropped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 295
PROTECTED_VARIABLES = ("AIRFLOW_HOME", "AIRFLOW_VERSION", "AWS_REGION", "PYTHONPATH", "PYTHONUNBUFFERED")
PROTECTED_PREFIXES = ("MWAA__", "ECS_")
_SHELL_NOISE = ("_", "SHLVL", "OLDPWD", "PWD")


def run_startup_script(
    script: Path, timeout: float = STARTUP_TIMEOUT_SECONDS, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Source ``script`` as MWAA does; return the variables it exports that MWAA would keep."""
    before = dict(os.environ if environ is None else environ)
    if not script.is_file():
        raise SystemExit(f"{script}: no such startup script")
    probe = f'set -e; source "{script}" >&2; env -0'
    try:
        done = subprocess.run(["bash", "-c", probe], capture_output=True, timeout=timeout, env=before)
    except subprocess.TimeoutExpired:
        raise SystemExit(
            f"{script}: still running after {timeout:.0f} s; MWAA stops startup scripts at 5 minutes"
        ) from None
    if done.returncode:
        raise SystemExit(f"{script}: exited with {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    after = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    changed = {k: v for k, v in after.items() if before.get(k) != v and k not in _SHELL_NOISE}
    kept = {k: v for k, v in changed.items() if k not in PROTECTED_VARIABLES and not k.startswith(PROTECTED_PREFIXES)}
    for name in sorted(set(changed) - set(kept)):
        print(f"ignored, as on MWAA: {name}")
    return kept
