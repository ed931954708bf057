"""The runner's checked-in settings: configuration options, connections, variables, startup script.

They reach Airflow through its own environment mechanisms (``AIRFLOW__SECTION__KEY``,
``AIRFLOW_CONN_<ID>``, ``AIRFLOW_VAR_<NAME>``), so the file is the whole truth on every
start: nothing is left behind in the metadata database when an entry is removed. The
file is committed, so anything that looks like a credential is refused; AWS access
comes from the user's own profile or SSO session (boto3's default chain), as MWAA's
comes from the execution role.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SECTIONS = ("airflow_configuration_options", "connections", "variables", "startup_script")
CONNECTION_FIELDS = ("conn_type", "description", "host", "schema", "login", "port", "extra")
# A name is secret-looking when one of its words (split at _ . -) is one of these, or it
# holds one of the compound names; "max_tokens" or "secrets.backend" are not.
_SECRET_WORDS = {"password", "passwd", "pwd", "secret", "token", "credential", "credentials", "apikey", "fernet",
                 "bearer", "authorization", "keyfile", "passphrase"}  # fmt: skip
_SECRET_COMPOUNDS = re.compile(r"api_?key|access_?key|private_?key|secret_?key|session_?key|client_?secret", re.I)
# Values that are credentials whatever their key: a URL with a password, an AWS access key
# id, a PEM private key, a bearer token.
_SECRET_VALUE = re.compile(
    r"://[^/\s:@]*:[^/\s@]+@|\b(AKIA|ASIA)[A-Z0-9]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----|\bBearer\s+\S{8,}"
)
_OPTION = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Options the runner sets itself; letting the file change them would break the mirror.
RUNNER_OWNED = {
    "core.dags_folder", "core.plugins_folder", "core.executor", "core.parallelism", "core.load_examples",
    "database.sql_alchemy_conn", "api.host", "api.port", "api.base_url", "api.workers",
    "core.execution_api_server_url", "core.simple_auth_manager_users", "core.simple_auth_manager_passwords_file",
    "scheduler.enable_health_check", "core.multi_team",
}  # fmt: skip


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys without a word; here that is an error with its line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


class SettingsFileError(SystemExit):
    """The settings file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class RunnerSettings:
    env: dict[str, str] = field(default_factory=dict)
    startup_script: Path | None = None
    connections: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()

    @property
    def backend(self) -> str:
        """The workflow's backend these settings choose ("local" unless set), as video_recommender.settings reads it."""
        return self.env.get("AIRFLOW__RECOMMENDER__BACKEND", self.env.get("RECOMMENDER_BACKEND", "local"))


def _secret_name(name: object) -> bool:
    words = set(re.split(r"[_.\-]", str(name).lower()))
    return bool(words & _SECRET_WORDS) or bool(_SECRET_COMPOUNDS.search(str(name)))


def _secret_paths(value: object, path: str) -> list[str]:
    """Entries under ``value`` (mappings and lists, any depth) whose name or value looks like a credential."""
    if isinstance(value, dict):
        found = [f"{path}.{key}" for key in value if _secret_name(key)]
        return found + [p for key, item in value.items() for p in _secret_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _secret_paths(item, f"{path}[{index}]")]
    return [path] if isinstance(value, str) and _SECRET_VALUE.search(value) else []


def load(path: Path, repo: Path) -> RunnerSettings:
    """Read and check ``path``; every problem names the file and the entry."""
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except OSError as exc:
        raise SettingsFileError(f"{path}: cannot read the settings file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SettingsFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsFileError(f"{path}: expected a mapping with the keys {', '.join(SECTIONS)}")

    def fail(entry: str, expected: str) -> SettingsFileError:
        return SettingsFileError(f"{path}: {entry}: {expected}")

    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise fail(unknown[0], f"unknown key; expected one of {', '.join(SECTIONS)}")
    env: dict[str, str] = {}
    options = data.get("airflow_configuration_options") or {}
    if not isinstance(options, dict):
        raise fail("airflow_configuration_options", "expected a mapping of section.key: value")
    for option, value in options.items():
        where = f"airflow_configuration_options.{option}"
        if not _OPTION.match(str(option)):
            raise fail(where, "expected a lower-case section.key name, as in MWAA's AirflowConfigurationOptions")
        if option in RUNNER_OWNED:
            raise fail(where, "set by the runner itself; remove it from the settings file")
        if _secret_name(option) or _secret_paths(value, where):
            raise fail(where, "looks like a credential; this file is committed, keep secrets out of it")
        if isinstance(value, dict | list) or value is None:
            raise fail(where, "expected a string, number or true/false")
        section, key = option.split(".", 1)
        env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )

    connections = data.get("connections") or {}
    if not isinstance(connections, dict):
        raise fail("connections", "expected a mapping of connection id: fields")
    for conn_id, fields in connections.items():
        where = f"connections.{conn_id}"
        if not _IDENTIFIER.match(str(conn_id)):
            raise fail(where, "expected a connection id of letters, digits and _")
        if not isinstance(fields, dict) or "conn_type" not in fields:
            raise fail(where, "expected a mapping with at least conn_type")
        extra_fields = sorted(set(fields) - set(CONNECTION_FIELDS))
        if extra_fields:
            raise fail(f"{where}.{extra_fields[0]}", f"expected one of {', '.join(CONNECTION_FIELDS)} (no password)")
        secrets = _secret_paths(fields, where)
        if fields["conn_type"] == "aws" and fields.get("login"):
            secrets.insert(0, f"{where}.login")  # an AWS connection's login is an access key id
        if secrets:
            raise fail(secrets[0], "looks like a credential; this file is committed, keep secrets out of it")
        if "extra" in fields and not isinstance(fields["extra"], dict):
            raise fail(f"{where}.extra", "expected a mapping")
        if "port" in fields and (not isinstance(fields["port"], int) or isinstance(fields["port"], bool)):
            raise fail(f"{where}.port", "expected a port number")
        env_name = f"AIRFLOW_CONN_{str(conn_id).upper()}"
        if env_name in env:
            raise fail(where, "differs from another connection id only in case; Airflow would see one")
        env[env_name] = json.dumps(fields, sort_keys=True)

    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise fail("variables", "expected a mapping of name: value")
    for name, value in variables.items():
        where = f"variables.{name}"
        if not _IDENTIFIER.match(str(name)):
            raise fail(where, "expected a variable name of letters, digits and _")
        if _secret_name(name) or _secret_paths(value, where):
            raise fail(where, "looks like a credential; this file is committed, keep secrets out of it")
        env[f"AIRFLOW_VAR_{str(name).upper()}"] = value if isinstance(value, str) else json.dumps(value)

    script = data.get("startup_script")
    if script is not None and not isinstance(script, str):
        raise fail("startup_script", "expected a path (relative to the repository) or null")
    startup = (repo / script) if script else None
    if startup is not None and not startup.is_file():
        raise fail("startup_script", f"{startup} does not exist")
    return RunnerSettings(env, startup, tuple(str(c) for c in connections), tuple(str(v) for v in variables))
