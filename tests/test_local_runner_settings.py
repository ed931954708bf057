"""The runner's checked-in settings file: what Airflow sees, and what is refused (credentials)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))

from mwaa_local.settings_file import SettingsFileError, load  # ruff: ignore[module-import-not-at-top-of-file]

CHECKED_IN = REPO / "local-runner" / "settings.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return path


def test_the_checked_in_file_gives_the_workflow_settings_and_aws_default() -> None:
    settings = load(CHECKED_IN, REPO)
    assert settings.env["AIRFLOW__RECOMMENDER__BACKEND"] == "local"
    assert json.loads(settings.env["AIRFLOW_CONN_AWS_DEFAULT"]) == {
        "conn_type": "aws",
        "description": "boto3's default credentials (profile, SSO or instance role), as MWAA's execution role",
        "extra": {"region_name": "us-east-1"},
    }
    assert settings.connections == ("aws_default",) and settings.startup_script is None


def test_airflow_itself_reads_the_connections_variables_and_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "airflow_configuration_options:\n  recommender.seed: 7\n  core.default_timezone: Europe/Berlin\n"
        "connections:\n  warehouse:\n    conn_type: postgres\n    host: db.internal\n    port: 5432\n"
        "    login: reader\n    extra: {sslmode: require}\n"
        "variables:\n  owner_team: recsys\n  thresholds: {rmse: 0.9}\n",
    )
    settings = load(path, REPO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | settings.env
    env |= {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/a.db"}
    script = (
        "from airflow.sdk import Connection, Variable\n"
        "from airflow.configuration import conf\n"
        "import json\n"
        "c = Connection.get('warehouse')\n"
        "print(json.dumps([c.host, c.port, c.login, c.extra_dejson, Variable.get('owner_team'),\n"
        "  Variable.get('thresholds', deserialize_json=True), conf.get('recommender', 'seed'),\n"
        "  conf.get('core', 'default_timezone')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        "db.internal", 5432, "reader", {"sslmode": "require"}, "recsys", {"rmse": 0.9}, "7", "Europe/Berlin",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "entry", "expected"),
    [
        ("connections:\n  db:\n    conn_type: postgres\n    password: hunter2\n", "connections.db.password",
         "no password"),
        ("connections:\n  aws_default:\n    conn_type: aws\n    extra:\n      aws_secret_access_key: x\n",
         "connections.aws_default.extra.aws_secret_access_key", "looks like a credential"),
        ("connections:\n  aws_default:\n    conn_type: aws\n    login: AKIAEXAMPLE\n", "connections.aws_default.login",
         "looks like a credential"),
        ("variables:\n  api_token: abc\n", "variables.api_token", "looks like a credential"),
        ("airflow_configuration_options:\n  core.dags_folder: /x\n", "airflow_configuration_options.core.dags_folder",
         "set by the runner itself"),
        ("airflow_configuration_options:\n  Recommender: local\n", "airflow_configuration_options.Recommender",
         "section.key"),
        ("connectons: {}\n", "connectons", "unknown key"),
        ("connections:\n  db:\n    host: x\n", "connections.db", "at least conn_type"),
        ("startup_script: nowhere/startup.sh\n", "startup_script", "does not exist"),
        ("airflow_configuration_options:\n  core.fernet_key: abc\n", "airflow_configuration_options.core.fernet_key",
         "looks like a credential"),
        ("airflow_configuration_options:\n  celery.broker_url: redis://:hunter2@cache:6379/0\n",
         "airflow_configuration_options.celery.broker_url", "looks like a credential"),
        ("connections:\n  db:\n    conn_type: postgres\n    host: postgres://u:hunter2@h/db\n", "connections.db.host",
         "looks like a credential"),
        ("connections:\n  api:\n    conn_type: http\n    extra:\n      headers: [{Authorization: x}]\n",
         "connections.api.extra.headers[0].Authorization", "looks like a credential"),
        ("variables:\n  deploy_key_id: AKIAIOSFODNN7EXAMPLE\n", "variables.deploy_key_id", "looks like a credential"),
        ("variables:\n  sa: {keyfile_dict: '-----BEGIN PRIVATE KEY-----'}\n", "variables.sa", "looks like a credential"),
        ("airflow_configuration_options:\n  core.parallelism: 32\n", "airflow_configuration_options.core.parallelism",
         "set by the runner itself"),
        ("connections:\n  db:\n    conn_type: postgres\n    port: '5432x'\n", "connections.db.port",
         "expected a port number"),
        ("connections:\n  db: {conn_type: postgres}\n  DB: {conn_type: postgres}\n", "connections.DB",
         "only in case"),
    ],
)  # fmt: skip
def test_refused_entries_name_the_file_and_the_entry(tmp_path: Path, text: str, entry: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsFileError) as raised:
        load(path, REPO)
    message = str(raised.value)
    assert message.startswith(f"{path}: {entry}:") and expected in message, message


def test_yaml_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "connections:\n  db: [unclosed\n")
    with pytest.raises(SettingsFileError, match=rf"(?s){path}: not valid YAML: .*line 2"):
        load(path, REPO)


def test_a_startup_script_named_in_the_file_is_found_relative_to_the_repository(tmp_path: Path) -> None:
    (tmp_path / "startup.sh").write_text("export RECOMMENDER_SEED=3\n")
    path = write(tmp_path, "startup_script: startup.sh\n")
    assert load(path, tmp_path).startup_script == tmp_path / "startup.sh"


def test_ordinary_names_that_merely_contain_secret_words_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "airflow_configuration_options:\n  secrets.backend: airflow.providers.amazon.aws.secrets.secrets_manager."
        "SecretsManagerBackend\n  recommender.tokenizer: words\n"
        "variables:\n  max_tokens: 512\n  first_pass: true\n",
    )
    settings = load(path, REPO)
    assert settings.variables == ("max_tokens", "first_pass")
    assert settings.env["AIRFLOW__SECRETS__BACKEND"].endswith("SecretsManagerBackend")


def test_a_duplicate_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "variables:\n  owner: a\n  owner: b\n")
    with pytest.raises(SettingsFileError, match=rf"(?s){path}: not valid YAML: .*duplicate key 'owner'.*line 3"):
        load(path, REPO)
