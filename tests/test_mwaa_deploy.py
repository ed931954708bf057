"""recsys-mwaa deploy / rollback against S3 in moto (with versioning) and the MWAA API stubbed by botocore.

moto has no MWAA: botocore's Stubber answers GetEnvironment / UpdateEnvironment with the
API's own shapes and checks the parameters the command sends. ``record`` puts the S3 writes
and the MWAA answers in one list, to check their order.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import cli, packaging  # ruff: ignore[module-import-not-at-top-of-file]
from recsys_mwaa.deploy import (  # ruff: ignore[module-import-not-at-top-of-file]
    DeployError,
    deploy,
    load_manifest,
    manifests,
    rollback,
    status,
    worker_replacement_argument,
)

BUCKET, ENV = "mwaa-123456789012-recsys", "recsys-env"
ARN = {"Arn": "arn:aws:airflow:us-east-1:123456789012:environment/recsys-env"}


def environment(
    status_: str = "AVAILABLE", plugins: str | None = None, requirements: str | None = None, error=None, **settings
) -> dict:
    env = {
        "Name": ENV,
        "Status": status_,
        "WebserverUrl": "abc.c7.us-east-1.airflow.amazonaws.com",
        "AirflowVersion": "3.3.1",
    }
    if plugins:
        env |= {"PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": plugins}
    if requirements:
        env |= {"RequirementsS3Path": "requirements.txt", "RequirementsS3ObjectVersion": requirements}
    if error:
        env["LastUpdate"] = {"Status": "FAILED", "Error": {"ErrorCode": "PluginsInstallFailed", "ErrorMessage": error}}
    return {"Environment": env | settings}


def live_environment(settings: dict) -> dict:
    """GetEnvironment's answer for an AVAILABLE environment with these S3 settings (or update arguments)."""
    return environment(**{k: v for k, v in settings.items() if k != "WorkerReplacementStrategy"})


@pytest.fixture
def aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        mwaa = boto3.client("mwaa", region_name="us-east-1")
        with Stubber(mwaa) as stub:
            yield s3, mwaa, stub, packaging.build(tmp_path / "dist")
            stub.assert_no_pending_responses()


def versioned(s3) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def record(s3, mwaa) -> list[tuple[str, str]]:
    """(operation, key) for every S3 write and (operation, environment status) for every MWAA answer, in order."""
    events: list[tuple[str, str]] = []

    def s3_write(params, model, **_):
        events.append((model.name, params["Key"]))

    def mwaa_answer(model, parsed, **_):
        events.append((model.name, parsed.get("Environment", {}).get("Status", "")))

    for operation in ("PutObject", "CopyObject", "DeleteObject"):
        s3.meta.events.register(f"provide-client-params.s3.{operation}", s3_write)
    mwaa.meta.events.register("after-call.mwaa", mwaa_answer)
    return events


def stub_update(stub, current: dict, expected: dict | None = None) -> None:
    """One deploy's GetEnvironment, UpdateEnvironment (expected parameters) and GetEnvironment AVAILABLE."""
    stub.add_response("get_environment", current, {"Name": ENV})
    stub.add_response("update_environment", ARN, None if expected is None else {"Name": ENV, **expected})
    stub.add_response("get_environment", environment(), {"Name": ENV})


def write_package(
    root: Path, plugins: bytes, dags: dict[str, bytes], constraints: str | None = None
) -> packaging.Package:
    """A package with these bytes (deploy reads files only; they need not be a real zip or DAG)."""
    (root / "dags").mkdir(parents=True)
    (root / "plugins.zip").write_bytes(plugins)
    line = f'--constraint "/usr/local/airflow/dags/{constraints}"' if constraints else "--constraint https://x"
    (root / "requirements.txt").write_text(f"{line}\napache-airflow-providers-amazon\n")
    if constraints:
        (root / "dags" / constraints).write_text(f"# {constraints}\n")
    for name, body in dags.items():
        (root / "dags" / name).write_bytes(body)
    return packaging.Package(root)


def live_dags(s3) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="dags/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def latest_versions(s3, prefix: str = "") -> dict[str, str]:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix).get("Versions", [])
    return {v["Key"]: v["VersionId"] for v in listed if v["IsLatest"] and not v["Key"].startswith("deployments/")}


def one_version(s3, result: dict, key: str) -> str:
    return load_manifest(s3, BUCKET, result["manifest"])["objects"][key]


def quiet(_: str) -> None:
    pass


# Deploy.


def test_refuses_a_bucket_without_versioning(aws) -> None:
    s3, mwaa, _, package = aws
    with pytest.raises(DeployError, match=r"has versioning never enabled.*put-bucket-versioning"):
        deploy(package, s3, mwaa, BUCKET, ENV, say=quiet)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_first_deploy_uploads_everything_updates_gracefully_and_waits(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    stub.add_response("update_environment", ARN,
                      {"Name": ENV, "PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": ANY,
                       "RequirementsS3Path": "requirements.txt", "RequirementsS3ObjectVersion": ANY,
                       "WorkerReplacementStrategy": "GRACEFUL"})  # fmt: skip
    stub.add_response("get_environment", environment("UPDATING"), {"Name": ENV})
    stub.add_response("get_environment", environment("AVAILABLE"), {"Name": ENV})
    said: list[str] = []
    result = deploy(package, s3, mwaa, BUCKET, ENV, say=said.append, poll_seconds=0)
    assert sorted(result["uploads"]) == sorted(package.files())
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="plugins.zip")["Versions"]
    assert result["update"]["PluginsS3ObjectVersion"] == versions[0]["VersionId"]
    assert result["url"] == "https://abc.c7.us-east-1.airflow.amazonaws.com"
    assert any(line.startswith("uploading plugins.zip (") for line in said)


def test_environment_files_go_first_and_dags_only_after_available(aws, tmp_path) -> None:
    s3, mwaa, stub, _ = aws
    versioned(s3)
    package = write_package(tmp_path / "p", b"plugins", {"dag.py": b"# dag"}, constraints="constraints-abc.txt")
    stub.add_response("get_environment", environment(), {"Name": ENV})
    stub.add_response("update_environment", ARN, None)
    stub.add_response("get_environment", environment("UPDATING"), {"Name": ENV})
    stub.add_response("get_environment", environment("AVAILABLE"), {"Name": ENV})
    events = record(s3, mwaa)
    result = deploy(package, s3, mwaa, BUCKET, ENV, say=quiet, poll_seconds=0)
    assert events == [
        ("GetEnvironment", "AVAILABLE"),
        ("PutObject", "plugins.zip"),
        ("PutObject", "requirements.txt"),
        # named by the new requirements.txt, which MWAA installs during the update
        ("PutObject", "dags/constraints-abc.txt"),
        ("UpdateEnvironment", ""),
        ("GetEnvironment", "UPDATING"),
        ("GetEnvironment", "AVAILABLE"),
        ("PutObject", "dags/dag.py"),
        ("PutObject", result["manifest"]),
    ]


def test_unchanged_files_are_not_uploaded_and_no_update_is_made(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub_update(stub, environment())
    first = deploy(package, s3, mwaa, BUCKET, ENV, say=quiet, poll_seconds=0)
    stub.add_response("get_environment", live_environment(first["update"]), {"Name": ENV})
    second = deploy(package, s3, mwaa, BUCKET, ENV, say=quiet)  # no UpdateEnvironment stubbed: none allowed
    assert second["uploads"] == [] and second["update"] == {}
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="plugins.zip")["Versions"]) == 1


def test_a_changed_dag_is_uploaded_and_removed_ones_deleted_only_when_asked(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    s3.put_object(Bucket=BUCKET, Key="dags/old_dag.py", Body=b"# removed locally")
    for key in ("plugins.zip", "requirements.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=package.files()[key].read_bytes(),
                      Metadata={"sha256": packaging.sha256(package.files()[key])})  # fmt: skip
    versions = {k: s3.head_object(Bucket=BUCKET, Key=k)["VersionId"] for k in ("plugins.zip", "requirements.txt")}
    current = environment(plugins=versions["plugins.zip"], requirements=versions["requirements.txt"])
    stub.add_response("get_environment", current, {"Name": ENV})
    events, said = record(s3, mwaa), []
    kept = deploy(package, s3, mwaa, BUCKET, ENV, say=said.append)  # only DAGs changed: no UpdateEnvironment
    assert "2. no UpdateEnvironment: the environment already has these versions (MWAA syncs dags/ by itself)" in said
    assert set(kept["uploads"]) == {"dags/recommender_workflow.py", "dags/.airflowignore"} and kept["update"] == {}
    assert [e for e in events if e[0] != "PutObject"] == [("GetEnvironment", "AVAILABLE")]
    assert "dags/old_dag.py" in {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    stub.add_response("get_environment", current, {"Name": ENV})
    pruned = deploy(package, s3, mwaa, BUCKET, ENV, say=quiet, delete_removed=True)
    assert pruned["deletes"] == ["dags/old_dag.py"] and pruned["uploads"] == []


def test_update_failed_is_reported_and_leaves_dags_and_manifests_alone(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    stub.add_response("update_environment", ARN, None)
    stub.add_response(
        "get_environment", environment("UPDATE_FAILED", error="plugins.zip: No module named x"), {"Name": ENV}
    )
    with pytest.raises(DeployError, match=r"UPDATE_FAILED: PluginsInstallFailed plugins\.zip: No module named x"):
        deploy(package, s3, mwaa, BUCKET, ENV, say=quiet, poll_seconds=0)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {"plugins.zip", "requirements.txt"}  # no DAG file, no manifest


def test_dry_run_changes_nothing_and_prints_the_order(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub.add_response("get_environment", environment(), {"Name": ENV})
    said: list[str] = []
    result = deploy(package, s3, mwaa, BUCKET, ENV, dry_run=True, say=said.append)
    assert result["dry_run"] and sorted(result["uploads"]) == sorted(package.files())
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    lines = [line.strip() for line in said]
    update = lines.index("2. UpdateEnvironment recsys-env (plugins.zip, requirements.txt, WorkerReplacementStrategy GRACEFUL), then wait until it is AVAILABLE")  # fmt: skip
    assert lines.index("upload  plugins.zip") < update < lines.index("upload  dags/recommender_workflow.py")
    assert lines[-2:] == ["4. record the manifest in deployments/", "dry run: nothing changed"]


def test_worker_replacement_forced_is_passed_on(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    expected = {"PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": ANY, "RequirementsS3Path": "requirements.txt",
                "RequirementsS3ObjectVersion": ANY, "WorkerReplacementStrategy": "FORCED"}  # fmt: skip
    stub_update(stub, environment(), expected)
    assert deploy(package, s3, mwaa, BUCKET, ENV, worker_replacement="FORCED", say=quiet, poll_seconds=0)["update"]
    with pytest.raises(DeployError, match="MWAA accepts FORCED or GRACEFUL"):
        deploy(package, s3, mwaa, BUCKET, ENV, worker_replacement="SOMETIME", say=quiet)


def test_worker_replacement_is_left_out_where_botocores_model_lacks_it() -> None:
    shape = SimpleNamespace(members={"Name": None})
    old = SimpleNamespace(meta=SimpleNamespace(service_model=SimpleNamespace(
        operation_model=lambda name: SimpleNamespace(input_shape=shape))))  # fmt: skip
    assert worker_replacement_argument(old, "GRACEFUL") == {}


def test_the_cli_passes_the_deploy_options_on(monkeypatch, tmp_path) -> None:
    import recsys_mwaa.deploy

    calls = []
    monkeypatch.setattr(cli, "_clients", lambda args: ("s3", "mwaa"))
    monkeypatch.setattr(recsys_mwaa.deploy, "deploy", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(recsys_mwaa.deploy, "rollback", lambda *args, **kwargs: calls.append(kwargs))
    dist = write_package(tmp_path / "dist", b"p", {"dag.py": b"#"}).root
    common = ["--environment", ENV, "--bucket", BUCKET]
    assert cli.main(["deploy", *common, "--dist", str(dist), "--worker-replacement", "FORCED",
                     "--startup-script", "s.sh", "--startup-script-key", "boot/s.sh"]) == 0  # fmt: skip
    assert cli.main(["rollback", *common]) == 0
    assert calls[0]["worker_replacement"] == "FORCED" and calls[1]["worker_replacement"] == "GRACEFUL"
    assert (calls[0]["startup_script"], calls[0]["startup_key"]) == (Path("s.sh"), "boot/s.sh")


def test_a_startup_script_is_uploaded_set_with_its_version_and_left_alone_when_unchanged(aws, tmp_path) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    script = tmp_path / "startup.sh"
    script.write_text("#!/bin/sh\nexport RECSYS_A=1\n")
    startup = {"StartupScriptS3Path": "startup.sh", "StartupScriptS3ObjectVersion": ANY}
    stub_update(stub, environment(), {"PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": ANY,
                "RequirementsS3Path": "requirements.txt", "RequirementsS3ObjectVersion": ANY,
                "WorkerReplacementStrategy": "GRACEFUL", **startup})  # fmt: skip
    first = deploy(package, s3, mwaa, BUCKET, ENV, startup_script=script, say=quiet, poll_seconds=0)
    uploaded = s3.head_object(Bucket=BUCKET, Key="startup.sh")["VersionId"]
    assert first["update"]["StartupScriptS3ObjectVersion"] == uploaded

    live = {k: v for k, v in first["update"].items() if k != "WorkerReplacementStrategy"}
    stub.add_response("get_environment", live_environment(live), {"Name": ENV})
    second = deploy(package, s3, mwaa, BUCKET, ENV, startup_script=script, say=quiet)  # no update stubbed
    assert second["uploads"] == [] and second["update"] == {}

    script.write_text("#!/bin/sh\nexport RECSYS_A=2\n")
    stub_update(stub, live_environment(live), {**live, **startup, "WorkerReplacementStrategy": "GRACEFUL"})
    third = deploy(package, s3, mwaa, BUCKET, ENV, startup_script=script, say=quiet, poll_seconds=0)
    assert third["uploads"] == ["startup.sh"]
    assert third["update"]["StartupScriptS3ObjectVersion"] not in (None, live["StartupScriptS3ObjectVersion"])
    with pytest.raises(DeployError, match="no such startup script"):
        deploy(package, s3, mwaa, BUCKET, ENV, startup_script=tmp_path / "none.sh", say=quiet)


def test_each_deploy_records_the_live_versions_in_one_manifest(aws) -> None:
    s3, mwaa, stub, package = aws
    versioned(s3)
    stub_update(stub, environment())
    first = deploy(package, s3, mwaa, BUCKET, ENV, say=quiet, poll_seconds=0)
    manifest = load_manifest(s3, BUCKET, first["manifest"])
    assert manifests(s3, BUCKET) == [first["manifest"]] and first["manifest"] == f"deployments/{manifest['id']}.json"
    assert manifest["objects"] == latest_versions(s3)
    assert set(manifest["objects"]) == set(package.files())
    assert manifest["settings"] == {k: v for k, v in first["update"].items() if k != "WorkerReplacementStrategy"}
    assert manifest["update"]["WorkerReplacementStrategy"] == "GRACEFUL"
    assert (manifest["kind"], manifest["previous"], manifest["environment"]) == ("deploy", None, ENV)
    assert manifest["created"].endswith("+00:00") and manifest["id"].endswith("-0001")


# Rollback.


def test_rollback_restores_the_previous_deploy_exactly_and_twice_goes_two_back(aws, tmp_path) -> None:
    s3, mwaa, stub, _ = aws
    versioned(s3)
    packages = {
        "A": write_package(tmp_path / "A", b"plugins A", {"recommender_workflow.py": b"# A"}),
        "B": write_package(tmp_path / "B", b"plugins B", {"recommender_workflow.py": b"# B", "extra_b.py": b"# B"}),
        "C": write_package(tmp_path / "C", b"plugins C", {"recommender_workflow.py": b"# C", "new_c.py": b"# C"}),
    }
    live, deployed, dags = environment(), {}, {}
    for name in ("A", "B", "C"):
        stub_update(stub, live)
        deployed[name] = deploy(packages[name], s3, mwaa, BUCKET, ENV, delete_removed=True, say=quiet, poll_seconds=0)
        settings = load_manifest(s3, BUCKET, deployed[name]["manifest"])["settings"]
        live, dags[name] = live_environment(settings), live_dags(s3)
    assert dags["C"] == {"dags/recommender_workflow.py": b"# C", "dags/new_c.py": b"# C"}
    stub.add_response("get_environment", live, {"Name": ENV})
    deploy(packages["C"], s3, mwaa, BUCKET, ENV, say=quiet)  # changes nothing: rollback still goes to B
    plugins = {name: load_manifest(s3, BUCKET, d["manifest"])["objects"]["plugins.zip"] for name, d in deployed.items()}

    for back_to, previous in (("B", "A"), ("A", None)):
        target = load_manifest(s3, BUCKET, deployed[back_to]["manifest"])
        stub.add_response("get_environment", live, {"Name": ENV})
        stub.add_response("update_environment", ARN, {"Name": ENV, **target["settings"], "WorkerReplacementStrategy": "GRACEFUL"})  # fmt: skip
        stub.add_response("get_environment", environment(), {"Name": ENV})
        events = record(s3, mwaa)
        result = rollback(s3, mwaa, BUCKET, ENV, say=quiet, poll_seconds=0)
        assert target["settings"]["PluginsS3ObjectVersion"] == plugins[back_to]
        assert live_dags(s3) == dags[back_to]
        available = events.index(("GetEnvironment", "AVAILABLE"), 1)
        dag_writes = [i for i, e in enumerate(events) if e[0] in ("CopyObject", "DeleteObject")]
        assert events[1] == ("UpdateEnvironment", "") and dag_writes and min(dag_writes) > available
        assert events[-1] == ("PutObject", result["manifest"])
        manifest = load_manifest(s3, BUCKET, result["manifest"])
        assert (manifest["kind"], manifest["rolled_back_to"]) == ("rollback", target["id"])
        assert manifest["previous"] == (previous and load_manifest(s3, BUCKET, deployed[previous]["manifest"])["id"])
        assert manifest["settings"] == target["settings"]
        assert {k: v for k, v in manifest["objects"].items() if k.startswith("dags/")} == latest_versions(s3, "dags/")
        for key in dags[back_to]:  # each restored file is the manifest's version, copied: same bytes, same sha256
            head = s3.head_object(Bucket=BUCKET, Key=key)
            old = s3.head_object(Bucket=BUCKET, Key=key, VersionId=target["objects"][key])
            assert head["Metadata"] == old["Metadata"] and head["ContentLength"] == old["ContentLength"]
        live = live_environment(manifest["settings"])

    before = s3.list_object_versions(Bucket=BUCKET)
    stub.add_response("get_environment", live, {"Name": ENV})
    with pytest.raises(DeployError, match=r"-0006 is the earliest deployment recorded: .*nothing changed"):
        rollback(s3, mwaa, BUCKET, ENV, say=quiet)
    assert s3.list_object_versions(Bucket=BUCKET)["Versions"] == before["Versions"]


def test_rollback_with_no_manifest_is_a_clear_error_and_changes_nothing(aws) -> None:
    s3, mwaa, stub, _ = aws
    versioned(s3)
    s3.put_object(Bucket=BUCKET, Key="dags/recommender_workflow.py", Body=b"# old")
    s3.put_object(Bucket=BUCKET, Key="dags/recommender_workflow.py", Body=b"# new")
    stub.add_response("get_environment", environment(), {"Name": ENV})
    with pytest.raises(DeployError, match=r"no deployment manifest in s3://.*/deployments/.*nothing changed"):
        rollback(s3, mwaa, BUCKET, ENV, say=quiet)
    assert live_dags(s3) == {"dags/recommender_workflow.py": b"# new"}
    assert len(s3.list_object_versions(Bucket=BUCKET)["Versions"]) == 2


def test_rollback_restores_a_deleted_constraints_file_before_updating(aws, tmp_path) -> None:
    """deploy --delete-removed deletes the old hashed constraints file; rollback brings it back first."""
    s3, mwaa, stub, _ = aws
    versioned(s3)
    first = write_package(tmp_path / "1", b"p", {"dag.py": b"# 1"}, constraints="constraints-111.txt")
    second = write_package(tmp_path / "2", b"p", {"dag.py": b"# 2"}, constraints="constraints-222.txt")
    stub_update(stub, environment())
    one = deploy(first, s3, mwaa, BUCKET, ENV, say=quiet, poll_seconds=0)
    settings = load_manifest(s3, BUCKET, one["manifest"])["settings"]
    stub_update(stub, live_environment(settings))
    two = deploy(second, s3, mwaa, BUCKET, ENV, delete_removed=True, say=quiet, poll_seconds=0)
    assert two["deletes"] == ["dags/constraints-111.txt"]
    stub_update(stub, live_environment(load_manifest(s3, BUCKET, two["manifest"])["settings"]))
    said: list[str] = []
    events = record(s3, mwaa)
    rollback(s3, mwaa, BUCKET, ENV, say=said.append, poll_seconds=0)
    assert events[:3] == [("GetEnvironment", "AVAILABLE"), ("CopyObject", "dags/constraints-111.txt"),
                          ("UpdateEnvironment", "")]  # fmt: skip
    assert live_dags(s3) == {"dags/constraints-111.txt": b"# constraints-111.txt\n", "dags/dag.py": b"# 1"}
    assert said.index("1. environment files") < said.index(
        f"   restore dags/constraints-111.txt to version {one_version(s3, one, 'dags/constraints-111.txt')}"
    )


def test_rollback_dry_run_prints_the_plan_and_changes_nothing(aws, tmp_path) -> None:
    s3, mwaa, stub, _ = aws
    versioned(s3)
    live = environment()
    for name in ("1", "2"):
        stub_update(stub, live)
        result = deploy(write_package(tmp_path / name, name.encode(), {"dag.py": name.encode()}), s3, mwaa, BUCKET,
                        ENV, say=quiet, poll_seconds=0)  # fmt: skip
        live = live_environment(load_manifest(s3, BUCKET, result["manifest"])["settings"])
    before = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    stub.add_response("get_environment", live, {"Name": ENV})
    said: list[str] = []
    result = rollback(s3, mwaa, BUCKET, ENV, dry_run=True, say=said.append)
    assert result["dry_run"] and list(result["restores"]) == ["dags/dag.py"]
    assert s3.list_object_versions(Bucket=BUCKET)["Versions"] == before and live_dags(s3) == {"dags/dag.py": b"2"}
    assert said[-1] == "dry run: nothing changed" and any(line.startswith("2. UpdateEnvironment") for line in said)


def test_status_reports_versions_and_url(aws) -> None:
    _, mwaa, stub, _ = aws
    stub.add_response("get_environment", environment(plugins="v1", requirements="v2"), {"Name": ENV})
    assert status(mwaa, ENV) | {} == {
        "status": "AVAILABLE", "airflow_version": "3.3.1", "plugins_version": "v1", "requirements_version": "v2",
        "last_update": None, "url": "https://abc.c7.us-east-1.airflow.amazonaws.com",
    }  # fmt: skip


def test_manifests_are_ordered_by_sequence_not_clock(aws) -> None:
    s3, *_ = aws
    for key in (
        "deployments/20260102T000000Z-0002.json",
        "deployments/20260101T000000Z-0010.json",
        "deployments/x.txt",
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({}).encode())
    assert manifests(s3, BUCKET) == ["deployments/20260102T000000Z-0002.json", "deployments/20260101T000000Z-0010.json"]
