"""prepare-docker: the files the Docker variant (local-runner/docker/) mounts, from the same sources.

The official image reads the Airflow configuration options as MWAA passes them (one
JSON object in ``MWAA__CORE__CUSTOM_AIRFLOW_CONFIGS``); connections and variables pass
through the environment as ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``. The env file also
holds the generated Fernet key and API secret, so it is written 0600 under the state
folder and never committed.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
from pathlib import Path

from mwaa_local.package import build_and_unpack
from mwaa_local.paths import DEFAULT_SETTINGS, REPO
from mwaa_local.settings_file import load

COMPOSE_FILE = REPO / "local-runner" / "docker" / "docker-compose.yaml"
DEFAULT_STATE = REPO / ".local-runner" / "docker"
LOCAL_ENGINE_REQUIREMENTS = REPO / "requirements" / "local-engine.txt"


def _env_line(name: str, value: str) -> str:
    """One line of a Compose env file: double-quoted, with \\, ", $ and newlines escaped (no interpolation)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n")
    return f'{name}="{escaped}"'


def env_file_text(settings_env: dict[str, str], previous: dict[str, str]) -> str:
    options = {k: v for k, v in settings_env.items() if k.startswith("AIRFLOW__")}
    passthrough = {k: v for k, v in settings_env.items() if not k.startswith("AIRFLOW__")}
    fernet = previous.get("MWAA__CORE__FERNET_KEY") or json.dumps(
        {"FernetKey": base64.urlsafe_b64encode(os.urandom(32)).decode()}
    )
    secret = previous.get("MWAA__WEBSERVER__SECRET") or json.dumps({"secret_key": secrets.token_urlsafe(32)})
    lines = [
        "# Written by local-runner/mwaa-local prepare-docker; holds generated secrets: do not commit.",
        _env_line("MWAA__CORE__FERNET_KEY", fernet),
        _env_line("MWAA__WEBSERVER__SECRET", secret),
        _env_line("MWAA__CORE__CUSTOM_AIRFLOW_CONFIGS", json.dumps(options, sort_keys=True)),
    ]
    lines += [_env_line(name, value) for name, value in sorted(passthrough.items())]
    return "\n".join(lines) + "\n"


def _read_env_file(path: Path) -> dict[str, str]:
    """The two generated secrets of an earlier run, so the DB's encrypted fields stay readable."""
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name in ("MWAA__CORE__FERNET_KEY", "MWAA__WEBSERVER__SECRET"):
                values[name] = value[1:-1].replace('\\"', '"')  # JSON we wrote: no \\, $ or newlines
    return values


def prepare(state: Path = DEFAULT_STATE, settings_path: Path = DEFAULT_SETTINGS) -> Path:
    """Package the project and fill ``state`` with what docker-compose.yaml mounts; returns ``state``."""
    settings = load(settings_path, REPO)
    state.mkdir(parents=True, exist_ok=True)
    build_and_unpack(state / "plugins")
    startup = state / "startup"
    shutil.rmtree(startup, ignore_errors=True)
    startup.mkdir()
    if settings.startup_script:
        shutil.copyfile(settings.startup_script, startup / "startup.sh")
    # The image installs the mounted requirements.txt at every start, as MWAA does. On the
    # local backend the workflow's jobs run in the worker, so the engine's packages
    # (requirements/local-engine.txt, the file a user would add on MWAA) go in with it.
    requirements = (REPO / "dist" / "requirements.txt").read_text()
    if settings.backend == "local":
        requirements += "\n" + LOCAL_ENGINE_REQUIREMENTS.read_text()
    _write_atomically(state / "requirements.txt", requirements, 0o644)  # read by the image's airflow user
    data = state / "recommender-data"
    data.mkdir(exist_ok=True)
    data.chmod(0o777)  # the image's airflow user (uid set by the image) writes the workflow's files here
    env_file = state / "airflow.env"
    _write_atomically(env_file, env_file_text(settings.env, _read_env_file(env_file)))
    return state


def _write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.touch(mode=mode)  # 0600 by default: airflow.env holds the generated secrets
    tmp.chmod(mode)
    tmp.write_text(text)
    tmp.rename(path)
