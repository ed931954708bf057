"""Upload a package to an MWAA environment's bucket, update the environment, record what is live.

Order: the environment's files (plugins.zip, requirements.txt, the startup script and the
custom constraints file requirements.txt names) go first, UpdateEnvironment points MWAA at
their new object versions, and only once the environment is AVAILABLE again are the DAG
files uploaded. Only what changed is uploaded (each object carries its sha256 as metadata);
DAG files removed locally are deleted only when asked.

Every deploy and rollback ends by writing one manifest, ``deployments/<UTC time>-<seq>.json``:
the object version of every file it left live and the environment's S3 settings. A manifest
names ``previous``, the manifest whose state was live before it. Rollback restores the current
manifest's ``previous`` and records a manifest with ``rolled_back_to`` (the one restored) and
that one's own ``previous``, so a second rollback goes one more deploy back.

The bucket must have versioning: MWAA addresses plugins.zip, requirements.txt and the startup
script by object version, and rollback copies DAG files back from their versions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys_mwaa.custom_constraints import CONSTRAINT_LINE, MWAA_DAGS
from recsys_mwaa.packaging import Package, sha256

Say = Callable[[str], None]
ENV_FILES = {"plugins.zip": "Plugins", "requirements.txt": "Requirements"}  # key -> UpdateEnvironment field prefix
STARTUP = "StartupScript"
STARTUP_SETTINGS = ("StartupScriptS3Path", "StartupScriptS3ObjectVersion")
MANIFEST_NAME = re.compile(r"/?(\d{8}T\d{6}Z)-(\d+)\.json$")


class DeployError(RuntimeError):
    """Deployment cannot go on; the message says why and what to do."""


@dataclass
class Plan:
    files: dict[str, Path]  # key -> local file
    roles: dict[str, str]  # key -> UpdateEnvironment field prefix, for the environment's files
    early: list[str]  # keys that must be in the bucket before UpdateEnvironment
    constraints: str | None = None  # the dags/ constraints file requirements.txt names, if any
    uploads: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # key -> live object version (uploads: once uploaded)

    def lines(self, keys: list[str]) -> list[str]:
        return [f"   upload  {k}" if k in self.uploads else f"   keep    {k} (unchanged)" for k in keys]


def _key(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def _head(s3: Any, bucket: str, key: str, version: str | None = None) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
    except s3.exceptions.ClientError:
        return None  # no such key or version (or its latest version is a delete marker)


def require_versioning(s3: Any, bucket: str) -> None:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    if status != "Enabled":
        raise DeployError(
            f"bucket {bucket} has versioning {status}; MWAA needs object versions for plugins.zip and "
            f"requirements.txt: aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
        )


def worker_replacement_argument(mwaa: Any, strategy: str) -> dict[str, str]:
    """UpdateEnvironment's WorkerReplacementStrategy argument, when this botocore's model has it.

    botocore 1.43.56 (this .venv) has it, with FORCED and GRACEFUL; an older botocore refuses
    unknown parameters, so there the argument is left out and MWAA's default applies.
    """
    shape = mwaa.meta.service_model.operation_model("UpdateEnvironment").input_shape.members
    if "WorkerReplacementStrategy" not in shape:
        return {}
    if strategy not in shape["WorkerReplacementStrategy"].enum:
        raise DeployError(
            f"worker replacement {strategy!r}: MWAA accepts {' or '.join(shape['WorkerReplacementStrategy'].enum)}"
        )
    return {"WorkerReplacementStrategy": strategy}


def _constraints_key(package: Package, prefix: str) -> str | None:
    for line in package.requirements.read_text().splitlines():
        match = CONSTRAINT_LINE.match(line)
        if match and match.group(1).startswith(MWAA_DAGS + "/"):
            return _key(prefix, "dags/" + match.group(1).removeprefix(MWAA_DAGS + "/"))
    return None


def plan(
    package: Package,
    s3: Any,
    bucket: str,
    prefix: str = "",
    delete_removed: bool = False,
    startup: tuple[Path, str] | None = None,
) -> Plan:
    """What to upload (sha256 differs from the bucket's latest object), keep and delete; ``startup`` is (file, key)."""
    files = {_key(prefix, name): path for name, path in package.files().items()}
    roles = {_key(prefix, name): field_ for name, field_ in ENV_FILES.items()}
    if startup is not None:
        files[_key(prefix, startup[1])] = startup[0]
        roles[_key(prefix, startup[1])] = STARTUP
    constraints = _constraints_key(package, prefix)
    # The constraints file goes early too: MWAA installs the new requirements.txt during the update,
    # and that names /usr/local/airflow/dags/<file>.
    early = [k for k in files if k in roles or k == constraints]
    result = Plan(files, roles, early, constraints)
    for key, path in files.items():
        head = _head(s3, bucket, key)
        if head is not None and head.get("Metadata", {}).get("sha256") == sha256(path):
            result.unchanged.append(key)
            result.versions[key] = head["VersionId"]
        else:
            result.uploads.append(key)
    if delete_removed:
        # Safe for rollback although older manifests may name these keys (the hashed constraints file
        # too): in a versioned bucket a delete only adds a delete marker, rollback copies each file back
        # from the version its manifest names, and the constraints file before UpdateEnvironment.
        listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=_key(prefix, "dags/"))
        result.deletes = sorted({obj["Key"] for page in listed for obj in page.get("Contents", [])} - set(files))
    return result


def desired_settings(environment: dict, roles: dict[str, str], versions: dict[str, str]) -> dict[str, str | None]:
    """The environment's S3 settings for these files (a version is None until its upload)."""
    settings: dict[str, str | None] = {}
    for key, field_ in roles.items():
        settings |= {f"{field_}S3Path": key, f"{field_}S3ObjectVersion": versions.get(key)}
    if STARTUP_SETTINGS[0] not in settings and environment.get(STARTUP_SETTINGS[0]):
        # A startup script set by other means stays, and is passed again: MWAA takes path and version together.
        settings |= {name: environment.get(name) for name in STARTUP_SETTINGS}
    return settings


def _changed(environment: dict, settings: dict) -> list[str]:
    """The environment's files whose path or version the settings change."""
    fields = [name.removesuffix("S3Path") for name in settings if name.endswith("S3Path")]
    return [
        settings[f"{f}S3Path"]
        for f in fields
        if any(environment.get(f"{f}{part}") != settings[f"{f}{part}"] for part in ("S3Path", "S3ObjectVersion"))
    ]


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


def _update(mwaa: Any, name: str, settings: dict, strategy: dict, say: Say, poll_seconds: float) -> tuple[dict, dict]:
    """UpdateEnvironment, then wait for AVAILABLE; the arguments sent and the environment."""
    update = settings | strategy
    say(f"UpdateEnvironment {name}: {update}")
    mwaa.update_environment(Name=name, **update)
    try:
        return update, wait_until_available(mwaa, name, say, poll_seconds)
    except DeployError as exc:
        raise DeployError(f"{exc}; DAG files left as they were, no manifest recorded") from None


def _update_line(name: str, changed: list[str], strategy: dict) -> str:
    if not changed:
        return "2. no UpdateEnvironment: the environment already has these versions (MWAA syncs dags/ by itself)"
    how = f", WorkerReplacementStrategy {strategy['WorkerReplacementStrategy']}" if strategy else ""
    return f"2. UpdateEnvironment {name} ({', '.join(changed)}{how}), then wait until it is AVAILABLE"


# Manifests.


def _manifest_key(prefix: str, manifest_id: str) -> str:
    return _key(prefix, f"deployments/{manifest_id}.json")


def manifests(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """The manifest keys, oldest first: by sequence number, as two machines' clocks may disagree."""
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=_key(prefix, "deployments/"))
    keys = [obj["Key"] for page in listed for obj in page.get("Contents", []) if MANIFEST_NAME.search(obj["Key"])]
    return sorted(keys, key=lambda k: int(MANIFEST_NAME.search(k).group(2)))


def load_manifest(s3: Any, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _record(s3: Any, bucket: str, prefix: str, history: list[str], manifest: dict, say: Say) -> str:
    """Write the manifest in one put_object (never half of one); its key."""
    now = datetime.now(UTC)
    seq = int(MANIFEST_NAME.search(history[-1]).group(2)) + 1 if history else 1
    manifest = {"id": f"{now:%Y%m%dT%H%M%SZ}-{seq:04d}", "created": now.isoformat(timespec="seconds"), **manifest}
    key = _manifest_key(prefix, manifest["id"])
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    say(f"recorded {key}")
    return key


def _with_startup(objects: dict[str, str], settings: dict) -> dict[str, str]:
    """The live objects, with the startup script the environment runs (passed on by deploy if not its own)."""
    path, version = (settings.get(name) for name in STARTUP_SETTINGS)
    return objects | ({path: version} if path else {})


def _previous(current: dict | None, objects: dict, settings: dict) -> str | None:
    """The manifest a new one steps back to: the current one, unless the new state is the same."""
    if current is None:
        return None
    if current["objects"] == objects and current["settings"] == settings:
        return current.get("previous")
    return current["id"]


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
    startup_script: Path | None = None,
    startup_key: str = "startup.sh",
    worker_replacement: str = "GRACEFUL",
    say: Say = print,
    poll_seconds: float = 30,
) -> dict:
    """Deploy; return a summary (uploads, deletes, update arguments, manifest key, UI URL)."""
    if startup_script is not None and not startup_script.is_file():
        raise DeployError(f"{startup_script}: no such startup script")
    strategy = worker_replacement_argument(mwaa, worker_replacement)
    require_versioning(s3, bucket)
    environment = mwaa.get_environment(Name=environment_name)["Environment"]
    startup = None if startup_script is None else (startup_script, startup_key)
    todo = plan(package, s3, bucket, prefix, delete_removed, startup)
    history = manifests(s3, bucket, prefix)
    settings = desired_settings(environment, todo.roles, todo.versions)
    # The one decision of the order: MWAA syncs dags/ continuously but installs plugins.zip,
    # requirements.txt and the startup script only on UpdateEnvironment; DAG files uploaded
    # before that update is over would run against the old plugins. So when the environment's
    # files changed they go first, the update follows, and the DAG files only after AVAILABLE;
    # when only DAG files changed, there is no update at all.
    changed = _changed(environment, settings)
    dag_keys = [k for k in todo.files if k not in todo.early]
    for line in ["1. environment files", *todo.lines(todo.early), _update_line(environment_name, changed, strategy),
                 "3. DAG files", *todo.lines(dag_keys), *[f"   delete  {k}" for k in todo.deletes],
                 f"4. record the manifest in {_key(prefix, 'deployments/')}"]:  # fmt: skip
        say(line)
    summary = {"uploads": todo.uploads, "deletes": todo.deletes, "update": None, "dry_run": dry_run}
    if dry_run:
        say("dry run: nothing changed")
        return summary
    upload(s3, bucket, todo, [k for k in todo.early if k in todo.uploads], say)
    update: dict = {}
    if changed:
        settings = desired_settings(environment, todo.roles, todo.versions)
        update, environment = _update(mwaa, environment_name, settings, strategy, say, poll_seconds)
    upload(s3, bucket, todo, [k for k in dag_keys if k in todo.uploads], say)
    for key in todo.deletes:
        say(f"deleting {key}")
        s3.delete_object(Bucket=bucket, Key=key)
    objects = _with_startup(todo.versions, settings)
    current = load_manifest(s3, bucket, history[-1]) if history else None
    manifest = {"kind": "deploy", "environment": environment_name, "objects": objects, "settings": settings,
                "constraints": todo.constraints, "update": update, "previous": _previous(current, objects, settings)}  # fmt: skip
    url = f"https://{environment.get('WebserverUrl', '')}"
    say(f"Airflow UI: {url}")
    return summary | {"update": update, "manifest": _record(s3, bucket, prefix, history, manifest, say), "url": url}


def upload(s3: Any, bucket: str, todo: Plan, keys: list[str], say: Say) -> None:
    for key in keys:
        path = todo.files[key]
        say(f"uploading {key} ({path.stat().st_size:,} bytes)")
        response = s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), Metadata={"sha256": sha256(path)})
        todo.versions[key] = response["VersionId"]


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


def rollback(
    s3: Any,
    mwaa: Any,
    bucket: str,
    environment_name: str,
    *,
    prefix: str = "",
    dry_run: bool = False,
    worker_replacement: str = "GRACEFUL",
    say: Say = print,
    poll_seconds: float = 30,
) -> dict:
    """Restore the state the current manifest stepped from (its ``previous``), in deploy's order:
    the constraints file, UpdateEnvironment to that manifest's versions and AVAILABLE, then the
    DAG files (copied from their versions; those it did not have deleted); record a manifest."""
    strategy = worker_replacement_argument(mwaa, worker_replacement)
    require_versioning(s3, bucket)
    environment = mwaa.get_environment(Name=environment_name)["Environment"]
    history = manifests(s3, bucket, prefix)
    if not history:
        raise DeployError(
            f"no deployment manifest in s3://{bucket}/{_key(prefix, 'deployments/')}: rollback restores what "
            "a deploy recorded, and none is recorded; nothing changed"
        )
    current = load_manifest(s3, bucket, history[-1])
    if not current.get("previous"):
        raise DeployError(
            f"{current['id']} is the earliest deployment recorded: nothing to roll back to; nothing changed"
        )
    target = load_manifest(s3, bucket, _manifest_key(prefix, current["previous"]))
    missing = [f"{k} {v}" for k, v in target["objects"].items() if _head(s3, bucket, k, v) is None]
    if missing:
        raise DeployError(
            f"{target['id']} names object versions no longer in {bucket} ({', '.join(missing)}); nothing changed"
        )
    dags = _key(prefix, "dags/")
    # Only keys the project manages: those in either manifest.
    managed = sorted(k for k in current["objects"].keys() | target["objects"].keys() if k.startswith(dags))
    live = {k: (_head(s3, bucket, k) or {}).get("VersionId") for k in managed}
    restores = {k: target["objects"][k] for k in managed if k in target["objects"] and live[k] != target["objects"][k]}
    deletes = [k for k in managed if k not in target["objects"] and live[k]]
    settings = dict(target["settings"])
    if STARTUP_SETTINGS[0] not in settings and environment.get(STARTUP_SETTINGS[0]):
        # UpdateEnvironment cannot unset a startup script (its path has a minimum length of 1).
        say(
            f"{target['id']} had no startup script; {environment[STARTUP_SETTINGS[0]]} stays (remove it in the console)"
        )
        settings |= {name: environment.get(name) for name in STARTUP_SETTINGS}
    changed = _changed(environment, settings)  # same order rule as deploy
    early = [k for k in restores if k == target.get("constraints")]
    say(f"rollback {current['id']} -> {target['id']}")
    for line in ["1. environment files", *[f"   restore {k} to version {restores[k]}" for k in early],
                 _update_line(environment_name, changed, strategy), "3. DAG files",
                 *[f"   restore {k} to version {v}" for k, v in restores.items() if k not in early],
                 *[f"   delete  {k}" for k in deletes], f"4. record the manifest in {_key(prefix, 'deployments/')}"]:  # fmt: skip
        say(line)
    summary = {"from": current["id"], "to": target["id"], "restores": restores, "deletes": deletes, "dry_run": dry_run}
    if dry_run:
        say("dry run: nothing changed")
        return summary | {"update": None}
    objects = dict(target["objects"])
    for key in early:
        objects[key] = _restore(s3, bucket, key, restores[key], say)
    update: dict = {}
    if changed:
        update, environment = _update(mwaa, environment_name, settings, strategy, say, poll_seconds)
    for key in restores:
        if key not in early:
            objects[key] = _restore(s3, bucket, key, restores[key], say)
    for key in deletes:
        say(f"deleting {key}")
        s3.delete_object(Bucket=bucket, Key=key)
    objects = _with_startup(objects, settings)
    manifest = {"kind": "rollback", "environment": environment_name, "objects": objects, "settings": settings,
                "constraints": target.get("constraints"), "update": update, "rolled_back_to": target["id"],
                "previous": target.get("previous")}  # fmt: skip
    return summary | {"update": update, "manifest": _record(s3, bucket, prefix, history, manifest, say)}


def _restore(s3: Any, bucket: str, key: str, version: str, say: Say) -> str:
    """Copy ``version`` of ``key`` over it (metadata, hence sha256, included): the new latest version."""
    say(f"restoring {key} to version {version}")
    source = {"Bucket": bucket, "Key": key, "VersionId": version}
    return s3.copy_object(Bucket=bucket, Key=key, CopySource=source)["VersionId"]
