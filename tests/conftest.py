"""Test set-up: Airflow configured for an isolated, offline run before it is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="recsys-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "RECOMMENDER_STORAGE_ROOT": (_AIRFLOW_HOME / "recommender-data").as_uri(),
    }
)
for name in [k for k in os.environ if k.startswith("RECOMMENDER_") and k != "RECOMMENDER_STORAGE_ROOT"]:
    del os.environ[name]
sys.path.insert(0, str(REPO / "plugins"))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB for tests that run the DAG."""
    from airflow.utils.db import initdb

    initdb()
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def demo_reviews(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated reviews file (gzip TSV), shared by the tests that need one."""
    from video_recommender.data.synthetic import generate_reviews, reviews_to_tsv_gz

    frame, _ = generate_reviews(scale=0.02, seed=7)
    path = tmp_path_factory.mktemp("reviews") / "reviews.tsv.gz"
    path.write_bytes(reviews_to_tsv_gz(frame))
    return path


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    from fm_jobs import write_job_dir

    return write_job_dir(tmp_path)


@pytest.fixture(scope="session")
def mwaa_python_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The MWAA-exact environment (.venv-mwaa, built or reused) for a fresh package: its python
    and its folder of local-engine.txt's packages."""
    sys.path.insert(0, str(REPO / "mwaa"))
    from recsys_mwaa import mwaa_env as env
    from recsys_mwaa import packaging

    package = packaging.build(tmp_path_factory.mktemp("mwaa-env-package") / "dist")
    python = env.ensure(package)
    return python, env.ensure_local_engine()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 (S3, SageMaker, IAM, CloudWatch Logs) for one test module."""
    from moto.server import ThreadedMotoServer
    from runner_processes import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed by the test itself when missing (apt-get, as root)."""
    done = subprocess.run(["bash", str(REPO / "scripts" / "install_chromium.sh")], capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"the browser test needs Chromium: {done.stderr.strip()}")
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")
