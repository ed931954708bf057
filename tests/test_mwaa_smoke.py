"""recsys-mwaa deploy --smoke: a DAG run through MWAA's InvokeRestApi, answered by botocore's Stubber.

The Stubber checks each call's parameters against botocore's model; the trigger's body is
also read by Airflow's own TriggerDAGRunPostBody (the REST API v2 model MWAA's Airflow 3 uses).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import cli, packaging  # ruff: ignore[module-import-not-at-top-of-file]
from recsys_mwaa.deploy import DeployError  # ruff: ignore[module-import-not-at-top-of-file]
from recsys_mwaa.smoke import dag_source, smoke  # ruff: ignore[module-import-not-at-top-of-file]

ENV, DAG = "recsys-env", "video_recommender"
SOURCE = (REPO / "dags" / "recommender_workflow.py").read_text()


class Capture:
    """Equal to anything (or to a string matching ``pattern``); keeps what it was compared with."""

    def __init__(self, pattern: str | None = None) -> None:
        self.pattern, self.value = pattern, None

    def __eq__(self, other) -> bool:  # the Stubber compares expected != sent
        self.value = other
        return self.pattern is None or re.fullmatch(self.pattern, other) is not None

    __hash__ = None


@pytest.fixture
def mwaa():
    client = boto3.client("mwaa", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def answer(stub, method: str, path: str, response: dict, body=None) -> None:
    expected = {"Name": ENV, "Path": path, "Method": method} | ({} if body is None else {"Body": body})
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": response}, expected)


def rest_error(stub, method: str, path: str, status: int, detail, server: bool = False) -> None:
    code = "RestApiServerException" if server else "RestApiClientException"
    stub.add_client_error("invoke_rest_api", code, "The Airflow REST API returned an error", 400,
                          expected_params={"Name": ENV, "Path": path, "Method": method},
                          modeled_fields={"RestApiStatusCode": status, "RestApiResponse": {"detail": detail}})  # fmt: skip


def stub_until_trigger(stub, paused: bool = True) -> Capture:
    """Not parsed yet (404), then the old code, then the deployed code; the DAG paused; the trigger."""
    rest_error(stub, "GET", f"/dagSources/{DAG}", 404, f"DAG with dag_id: '{DAG}' not found")
    answer(stub, "GET", f"/dagSources/{DAG}", {"content": "# the code before this deploy", "dag_id": DAG})
    answer(stub, "GET", f"/dagSources/{DAG}", {"content": SOURCE, "dag_id": DAG, "version_number": 2})
    answer(stub, "GET", f"/dags/{DAG}", {"dag_id": DAG, "is_paused": paused})
    if paused:
        answer(stub, "PATCH", f"/dags/{DAG}", {"dag_id": DAG, "is_paused": False}, {"is_paused": False})
    body = Capture()
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": {"state": "queued"}},
                      {"Name": ENV, "Path": f"/dags/{DAG}/dagRuns", "Method": "POST", "Body": body})  # fmt: skip
    return body


def answer_run(stub, *states: str) -> list[Capture]:
    """The run's GETs, one per state; their paths, to compare with the run id once triggered."""
    paths = [Capture(rf"/dags/{DAG}/dagRuns/smoke-\d{{8}}T\d{{6}}") for _ in states]
    for path, state in zip(paths, states, strict=True):
        answer(stub, "GET", path, {"state": state})
    return paths


def run_path(body: Capture) -> str:
    return f"/dags/{DAG}/dagRuns/{body.value['dag_run_id']}"


def test_smoke_waits_for_the_deployed_code_unpauses_triggers_and_returns_success(mwaa) -> None:
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody

    client, stub = mwaa
    body = stub_until_trigger(stub)
    paths = answer_run(stub, "running", "success")
    said: list[str] = []
    state = smoke(client, ENV, DAG, {"synthetic_scale": 0.01}, source=SOURCE, poll_seconds=0, say=said.append)
    assert state == "success"
    assert [p.value for p in paths] == [run_path(body)] * 2
    assert body.value["logical_date"] is None and body.value["conf"] == {"synthetic_scale": 0.01}
    assert body.value["dag_run_id"].startswith("smoke-") and len(run_path(body)) <= 64
    parsed = TriggerDAGRunPostBody.model_validate(body.value)  # Airflow's own request model
    assert parsed.dag_run_id == body.value["dag_run_id"] and parsed.conf == {"synthetic_scale": 0.01}
    assert f"unpausing {DAG}: a run of a paused DAG stays queued" in said
    assert said[-1] == f"smoke run {DAG} {body.value['dag_run_id']}: success"


def test_the_packaged_dag_file_is_the_source_waited_for(tmp_path) -> None:
    package = packaging.build(tmp_path / "dist")
    assert dag_source(package.dags, DAG) == SOURCE and dag_source(package.dags, "no_such_dag") is None


def test_smoke_times_out_with_the_runs_last_state(mwaa) -> None:
    client, stub = mwaa
    answer(stub, "GET", f"/dagSources/{DAG}", {"content": SOURCE})
    answer(stub, "GET", f"/dags/{DAG}", {"dag_id": DAG, "is_paused": False})
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": {"state": "queued"}}, None)
    with pytest.raises(DeployError, match=r"smoke run of video_recommender: run smoke-\S+ queued after 0 s"):
        smoke(client, ENV, DAG, source=SOURCE, timeout_seconds=0, poll_seconds=0, say=lambda _: None)


@pytest.fixture
def dist(tmp_path_factory) -> Path:
    return packaging.build(tmp_path_factory.mktemp("smoke") / "dist").root


@pytest.fixture
def deploy_smoke(monkeypatch, mwaa, dist):
    """cli.main deploy --smoke with the deploy itself replaced (tests/test_mwaa_deploy.py covers it)."""
    import recsys_mwaa.deploy

    client, stub = mwaa
    monkeypatch.setattr(cli, "_clients", lambda args: (None, client))
    monkeypatch.setattr(recsys_mwaa.deploy, "deploy", lambda *args, **kwargs: {})
    args = [
        "deploy",
        "--environment",
        ENV,
        "--bucket",
        "b",
        "--dist",
        str(dist),
        "--smoke",
        "--smoke-poll-seconds",
        "0",
    ]
    return stub, args


def test_a_failed_run_exits_1_with_one_line(deploy_smoke, capsys) -> None:
    stub, args = deploy_smoke
    body = stub_until_trigger(stub, paused=False)
    answer_run(stub, "running", "failed")
    code = cli.main([*args, "--smoke-conf", '{"synthetic_scale": 0.02}'])
    out, err = capsys.readouterr()
    assert code == 1 and err == f"FAIL: smoke run of {DAG} on {ENV} ended failed\n"
    assert body.value["conf"] == {"synthetic_scale": 0.02}
    assert out.splitlines()[-1] == f"smoke run {DAG} {body.value['dag_run_id']}: failed"


@pytest.mark.parametrize("server", [False, True], ids=["RestApiClientException", "RestApiServerException"])
def test_a_rest_api_error_is_one_line_exit_1(deploy_smoke, capsys, server) -> None:
    stub, args = deploy_smoke
    answer(stub, "GET", f"/dagSources/{DAG}", {"content": SOURCE})
    rest_error(stub, "GET", f"/dags/{DAG}", 500 if server else 403, "Forbidden:\n the role has no access", server)
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert (
        err
        == f"FAIL: Airflow REST API GET /dags/{DAG}: HTTP {500 if server else 403}: Forbidden: the role has no access\n"
    )


def test_dry_run_makes_no_smoke_run(deploy_smoke, capsys) -> None:
    _, args = deploy_smoke
    assert cli.main([*args, "--dry-run"]) == 0  # no REST call stubbed: none allowed
    assert capsys.readouterr().out == "dry run: no smoke run\n"


def test_smoke_conf_must_be_json(deploy_smoke, capsys) -> None:
    _, args = deploy_smoke
    assert cli.main([*args, "--smoke-conf", "{synthetic_scale: 1}"]) == 2
    assert capsys.readouterr().err.startswith("FAIL: --smoke-conf is not JSON: ")
    assert cli.main([*args, "--smoke-conf", "[1]"]) == 2
    assert capsys.readouterr().err == "FAIL: --smoke-conf is not a JSON object\n"
