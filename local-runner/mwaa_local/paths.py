"""Where things are: the checkout, its pinned interpreter and MWAA's vendored constraints."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
CONSTRAINTS = REPO / "requirements" / "constraints-3.3.1-py3.12.txt"
LOCAL_RUNNER = REPO / "local-runner"
DEFAULT_SETTINGS = LOCAL_RUNNER / "settings.yaml"
# MWAA's own constraint line (requirements.txt must carry it; see requirements/requirements.txt).
MWAA_CONSTRAINT_URL = "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"
