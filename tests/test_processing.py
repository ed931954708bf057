"""preprocess / prepare as SageMaker Processing jobs: the entry script, the bundle, the requests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from video_recommender import bundle, steps
from video_recommender.layout import RunPaths
from video_recommender.sagemaker_requests import name_for_try, processing_request
from video_recommender.settings import Settings

SETTINGS = Settings(
    storage_root="s3://b/p", backend="sagemaker", sagemaker_role_arn="arn:aws:iam::123456789012:role/sm"
)


def container(tmp_path: Path) -> tuple[Path, Path]:
    """A folder laid out like /opt/ml/processing: code/ (the bundle) and run/."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "video_recommender.zip").write_bytes(bundle.package_zip())
    (code / "processing_entry.py").write_bytes(bundle.entry_script())
    return code, tmp_path / "run"


def run_entry(code: Path, *args: str) -> subprocess.CompletedProcess:
    # A bare interpreter with the project's libraries but not its source tree: the package
    # must come from the zip, as in the container.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(code / "processing_entry.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=code.parent,
    )


def test_entry_script_runs_both_steps_from_the_bundle_like_the_worker(tmp_path: Path, demo_reviews: Path) -> None:
    code, root = container(tmp_path)
    (root / "input").mkdir(parents=True)
    (root / "input" / "reviews.tsv.gz").write_bytes(demo_reviews.read_bytes())
    for args in (
        ("preprocess", "--root", str(root)),
        ("prepare", "--root", str(root), "--predictor-type", "regressor"),
    ):
        done = run_entry(code, *args)
        assert done.returncode == 0, done.stderr[-3000:]
    # The worker's steps on the same input write the same RecordIO bytes.
    worker = RunPaths(tmp_path / "worker")
    steps.preprocess_step(demo_reviews, worker)
    steps.prepare_step(worker)
    for f in sorted((worker.recordio).rglob("*.protobuf")):
        assert (root / "recordio" / f.relative_to(worker.recordio)).read_bytes() == f.read_bytes()
    assert steps.prepared_summary(RunPaths(root))["feature_dim"] == steps.prepared_summary(worker)["feature_dim"]


def test_entry_script_generates_data_when_asked(tmp_path: Path) -> None:
    code, root = container(tmp_path)
    done = run_entry(code, "preprocess", "--root", str(root), "--generate", "0.01", "--seed", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (root / "input" / "reviews.tsv.gz").exists() and (root / "preprocessed" / "summary.json").exists()


def test_bundle_is_deterministic_and_has_no_caches() -> None:
    import io
    import zipfile

    data = bundle.package_zip()
    assert data == bundle.package_zip()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "video_recommender/steps.py" in names and "video_recommender/sagemaker_images.json" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


SERVICE = botocore.session.get_session().get_service_model("sagemaker")


@pytest.mark.parametrize(
    ("step", "kwargs"),
    [
        ("preprocess", {"input_uri": "s3://b/reviews.tsv.gz"}),
        ("preprocess", {"generate_scale": 1.0}),
        ("prepare", {"predictor_type": "binary_classifier"}),
    ],
)
def test_processing_requests_pass_botocore_validation(step: str, kwargs: dict) -> None:
    request = name_for_try(
        processing_request(SETTINGS, f"video-recsys-{step}-0123456789", step, "s3://b/p/runs/r", "r", **kwargs), 1
    )
    report = ParamValidator().validate(request, SERVICE.operation_model("CreateProcessingJob").input_shape)
    assert not report.has_errors(), report.generate_report()
    local = [i["S3Input"]["LocalPath"] for i in request["ProcessingInputs"]] + [
        o["S3Output"]["LocalPath"] for o in request["ProcessingOutputConfig"]["Outputs"]
    ]
    assert len(set(local)) == len(local) and all(p.startswith("/opt/ml/processing/") for p in local)


def test_processing_reads_only_s3_and_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match=r"reads its input from the run.s storage \(s3://"):
        processing_request(SETTINGS, "n", "preprocess", "s3://b/p", "r", input_uri="/home/me/reviews.tsv")
    with pytest.raises(ValueError, match="either an input_uri or a generate_scale"):
        processing_request(SETTINGS, "n", "preprocess", "s3://b/p", "r")


def test_the_processing_container_installs_what_the_worker_pins() -> None:
    """The job's pip pins equal MWAA's constraints (and requirements.txt for isal), so both run the same code."""
    from video_recommender import processing_entry

    repo = Path(__file__).resolve().parent.parent
    pinned = {}
    for name in ("requirements/constraints-3.3.1-py3.12.txt", "requirements/requirements.txt"):
        for text in (repo / name).read_text().splitlines():
            if "==" in text and not text.startswith(("#", "-")):
                package, _, version = text.split("#")[0].strip().partition("==")
                pinned[package.lower()] = version
    pins = [pin for pins in processing_entry.RUNTIME_PACKAGES.values() for pin in pins]
    assert pins and all(pinned.get(p.split("==")[0]) == p.split("==")[1] for p in pins), (pins, pinned.get("isal"))
