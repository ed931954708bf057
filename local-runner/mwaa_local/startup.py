"""MWAA's startup-script rules, as the official image applies them (amazon-mwaa-docker-images 3.3.1:
``python/mwaa/config/setup_environment.py`` and ``bin/airflow-user/execute-user-startup-script``).

The script is sourced by bash (no ``set -e``: a failing command does not stop it), with
``exit`` aliased so the environment is still captured, once per container with
``MWAA_AIRFLOW_COMPONENT`` naming it; it has 5 minutes less 5 seconds. Of what it exports,
``MWAA__*`` and the protected names below are dropped, and Airflow configuration options
(``AirflowConfigurationOptions``) win over the rest.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 295
# setup_environment.py, _is_protected_os_environ (3.3.1).
PROTECTED_VARIABLES = frozenset({
    "AIRFLOW_ENV_ID", "AIRFLOW_ENV_NAME", "AIRFLOW_HOME", "AIRFLOW_TASK_REVISION_ID", "AIRFLOW_VERSION",
    "AIRFLOW__AWS_MWAA__REDIRECT_URL", "JWT_PUBLIC_KEY", "AIRFLOW__WEBSERVER__BASE_URL", "AIRFLOW__API__BASE_URL",
    "AWS_DEFAULT_REGION", "AWS_REGION", "CUSTOMER_ACCOUNT_ID", "ECS_AGENT_URI", "ECS_CONTAINER_METADATA_URI",
    "ECS_CONTAINER_METADATA_URI_V4", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EXECUTION_ENV", "PYTHONPATH",
    "PYTHONUNBUFFERED", "WATCHTOWER_VERSION", "USE_NON_CRITICAL_LOGGING", "AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION",
})  # fmt: skip
PROTECTED_PREFIX = "MWAA__"
_SHELL_NOISE = ("_", "SHLVL", "OLDPWD", "PWD", "BASH_FUNC_handle_exit%%")
# The official wrapper: exit saves the environment, then leaves; so does reaching the end.
_WRAPPER = r"""
handle_exit() { env -0 > "$MWAA_LOCAL_ENV_OUT"; unalias exit; exit; }
shopt -s expand_aliases
alias exit=handle_exit
source "$1"
handle_exit
"""


def is_protected(name: str) -> bool:
    return name.startswith(PROTECTED_PREFIX) or name in PROTECTED_VARIABLES


def run_startup_script(
    script: Path,
    component: str = "worker",
    timeout: float = STARTUP_TIMEOUT_SECONDS,
    environ: Mapping[str, str] | None = None,
    echo: bool = False,
) -> dict[str, str]:
    """Source ``script`` as MWAA does for ``component``; the exports MWAA would keep.

    Its output goes to stdout when ``echo`` (test-startup-script), as MWAA logs it.
    """
    if not script.is_file():
        raise SystemExit(f"{script}: no such startup script")
    before = dict(os.environ if environ is None else environ) | {"MWAA_AIRFLOW_COMPONENT": component}
    handle, name = tempfile.mkstemp(prefix="mwaa-startup-", suffix=".env")
    os.close(handle)
    out = Path(name)
    out.unlink()  # created again only by the script's exit handler
    env = before | {"MWAA_LOCAL_ENV_OUT": str(out)}
    try:
        done = subprocess.run(["bash", "-c", _WRAPPER, "startup", str(script)], env=env, timeout=timeout,
                              capture_output=True, text=True)  # fmt: skip
        if echo:
            print(done.stdout + done.stderr, end="")
        if not out.exists():
            raise SystemExit(f"{script}: ended without handing back its environment (exit code {done.returncode})")
        after = dict(item.split("=", 1) for item in out.read_text().split("\0") if "=" in item)
    except subprocess.TimeoutExpired:
        raise SystemExit(
            f"{script}: still running after {timeout:.0f} s; MWAA stops startup scripts at 5 minutes"
        ) from None
    finally:
        out.unlink(missing_ok=True)
    changed = {
        k: v for k, v in after.items()
        if before.get(k) != v and k not in _SHELL_NOISE and k not in ("MWAA_LOCAL_ENV_OUT", "MWAA_AIRFLOW_COMPONENT")
    }  # fmt: skip
    kept = {k: v for k, v in changed.items() if not is_protected(k)}
    for name in sorted(set(changed) - set(kept)):
        print(f"ignored, as on MWAA: {name}")
    return kept
