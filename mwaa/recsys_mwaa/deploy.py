"""Upload a package to an MWAA environment's bucket and update the environment.

Only what changed is uploaded (each object carries its sha256 as metadata); DAG files
removed locally are deleted only when asked; UpdateEnvironment is called with new
plugins / requirements object versions only when those objects changed, then the
environment is watched until it is AVAILABLE again (or UPDATE_FAILED, with its error).
The bucket must have versioning: MWAA addresses plugins.zip and requirements.txt by
object version, and rollback needs the previous ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recsys_mwaa.packaging import Package, sha256

Say = Callable[[str], None]
VERSIONED = {"plugins.zip": "Plugins", "requirements.txt": "Requirements"}


class DeployError(RuntimeError):
    """Deployment cannot go on; the message says why and what to do."""


@dataclass
class Plan:
    uploads: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # key -> object version after upload

    def describe(self) -> list[str]:
        lines = [f"upload  {k}" for k in self.uploads] + [f"keep    {k} (unchanged)" for k in self.unchanged]
        return lines + [f"delete  {k}" for k in self.deletes]


def _key(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def require_versioning(s3: Any, bucket: str) -> None:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    if status != "Enabled":
        raise DeployError(
            f"bucket {bucket} has versioning {status}; MWAA needs object versions for plugins.zip and "
            f"requirements.txt: aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
        )


def plan(package: Package, s3: Any, bucket: str, prefix: str = "", delete_removed: bool = False) -> Plan:
    result = Plan()
    files = package.files()
    for name, path in files.items():
        key = _key(prefix, name)
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            same = head.get("Metadata", {}).get("sha256") == sha256(path)
        except s3.exceptions.ClientError:
            same = False
        (result.unchanged if same else result.uploads).append(key)
        if same and name in VERSIONED:
            result.versions[key] = head.get("VersionId")
    dags_prefix = _key(prefix, "dags/")
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=dags_prefix)
    remote = {obj["Key"] for page in listed for obj in page.get("Contents", [])}
    local = {_key(prefix, name) for name in files if name.startswith("dags/")}
    if delete_removed:
        result.deletes = sorted(remote - local)
    return result


def upload(package: Package, s3: Any, bucket: str, prefix: str, todo: Plan, say: Say) -> None:
    by_key = {_key(prefix, name): path for name, path in package.files().items()}
    for key in todo.uploads:
        path = by_key[key]
        say(f"uploading {key} ({path.stat().st_size:,} bytes)")
        response = s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), Metadata={"sha256": sha256(path)})
        todo.versions[key] = response.get("VersionId")
    for key in todo.deletes:
        say(f"deleting {key}")
        s3.delete_object(Bucket=bucket, Key=key)


def environment_update(environment: dict, prefix: str, todo: Plan) -> dict:
    """The UpdateEnvironment arguments for the versioned objects whose version changed (may be empty)."""
    update: dict[str, str] = {}
    for name, field_name in VERSIONED.items():
        key = _key(prefix, name)
        version = todo.versions.get(key)
        if version and (key in todo.uploads or environment.get(f"{field_name}S3ObjectVersion") != version):
            update[f"{field_name}S3Path"] = key
            update[f"{field_name}S3ObjectVersion"] = version
    return update


def wait_until_available(
    mwaa: Any, name: str, say: Say, poll_seconds: float = 30, timeout_seconds: float = 3600
) -> dict:
    deadline = time.monotonic() + timeout_seconds
    while True:
        environment = mwaa.get_environment(Name=name)["Environment"]
        status = environment["Status"]
        if status == "AVAILABLE":
            return environment
        if status in ("UPDATE_FAILED", "CREATE_FAILED", "UNAVAILABLE"):
            error = environment.get("LastUpdate", {}).get("Error", {})
            raise DeployError(
                f"environment {name} is {status}: {error.get('ErrorCode', '')} {error.get('ErrorMessage', 'no error message')}".strip()
            )
        if time.monotonic() > deadline:
            raise DeployError(f"environment {name} still {status} after {timeout_seconds:.0f} s")
        say(f"environment {name}: {status}")
        time.sleep(poll_seconds)


def deploy(
    package: Package,
    s3: Any,
    mwaa: Any,
    bucket: str,
    environment_name: str,
    *,
    prefix: str = "",
    dry_run: bool = False,
    delete_removed: bool = False,
    say: Say = print,
    poll_seconds: float = 30,
) -> dict:
    """Deploy; return a summary (uploads, deletes, update arguments, UI URL)."""
    require_versioning(s3, bucket)
    environment = mwaa.get_environment(Name=environment_name)["Environment"]
    todo = plan(package, s3, bucket, prefix, delete_removed)
    for line in todo.describe():
        say(line)
    if dry_run:
        pending = {k for k in todo.uploads if k.rsplit("/", 1)[-1] in VERSIONED}
        say("dry run: nothing changed" + (f"; UpdateEnvironment would follow for {sorted(pending)}" if pending else ""))
        return {"uploads": todo.uploads, "deletes": todo.deletes, "update": None, "dry_run": True}
    upload(package, s3, bucket, prefix, todo, say)
    update = environment_update(environment, prefix, todo)
    if update:
        say(f"UpdateEnvironment {environment_name}: {update}")
        mwaa.update_environment(Name=environment_name, **update)
        environment = wait_until_available(mwaa, environment_name, say, poll_seconds)
    else:
        say("plugins.zip and requirements.txt unchanged: no UpdateEnvironment (MWAA syncs dags/ by itself)")
    url = f"https://{environment.get('WebserverUrl', '')}"
    say(f"Airflow UI: {url}")
    return {"uploads": todo.uploads, "deletes": todo.deletes, "update": update, "url": url, "dry_run": False}


def status(mwaa: Any, environment_name: str) -> dict:
    environment = mwaa.get_environment(Name=environment_name)["Environment"]
    return {
        "status": environment["Status"],
        "airflow_version": environment.get("AirflowVersion"),
        "plugins_version": environment.get("PluginsS3ObjectVersion"),
        "requirements_version": environment.get("RequirementsS3ObjectVersion"),
        "last_update": environment.get("LastUpdate", {}).get("Status"),
        "url": f"https://{environment.get('WebserverUrl', '')}",
    }


def _previous_version(s3: Any, bucket: str, key: str, current: str | None) -> str | None:
    """The version of ``key`` just before ``current`` (or before the latest, when current is None)."""
    # S3 lists a key's versions newest first (timestamps can tie within a second).
    versions = [v for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []) if v["Key"] == key]
    ids = [v["VersionId"] for v in versions]
    if not ids:
        return None
    index = ids.index(current) if current in ids else 0
    return ids[index + 1] if index + 1 < len(ids) else None


def rollback(
    s3: Any,
    mwaa: Any,
    bucket: str,
    environment_name: str,
    *,
    prefix: str = "",
    dry_run: bool = False,
    say: Say = print,
    poll_seconds: float = 30,
) -> dict:
    """Point the environment at the previous plugins.zip / requirements.txt versions and restore
    the previous version of every DAG file that has one; then wait for AVAILABLE."""
    require_versioning(s3, bucket)
    environment = mwaa.get_environment(Name=environment_name)["Environment"]
    update: dict[str, str] = {}
    for name, field_name in VERSIONED.items():
        key = _key(prefix, name)
        previous = _previous_version(s3, bucket, key, environment.get(f"{field_name}S3ObjectVersion"))
        if previous:
            update[f"{field_name}S3Path"] = key
            update[f"{field_name}S3ObjectVersion"] = previous
        else:
            say(f"{key}: no earlier version; left as it is")
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=_key(prefix, "dags/"))
    restores = {}
    for key in sorted(obj["Key"] for page in listed for obj in page.get("Contents", [])):
        previous = _previous_version(s3, bucket, key, None)
        if previous:
            restores[key] = previous
    for key, version in restores.items():
        say(f"restore {key} to version {version}")
    if update:
        say(f"UpdateEnvironment {environment_name}: {update}")
    if dry_run:
        say("dry run: nothing changed")
        return {"update": update, "restores": restores, "dry_run": True}
    for key, version in restores.items():
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": version})
    if update:
        mwaa.update_environment(Name=environment_name, **update)
        wait_until_available(mwaa, environment_name, say, poll_seconds)
    return {"update": update, "restores": restores, "dry_run": False}
