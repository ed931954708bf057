"""checkov (from .venv-tools: its dependencies clash with Airflow's constraints) on the templates."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "mwaa" / "cloudformation"
# checkov evaluates a template with its parameters' defaults and skips resources (and !If branches)
# whose Condition is then false; these defaults switch every optional part on, so it checks them too.
NON_DEFAULT_CHOICES = {
    "ec2-airflow.yaml": {"DatabaseEngine": "aurora-serverless-v2", "InputBucketArns": "arn:aws:s3:::other-bucket"},
    "mwaa-environment.yaml": {"WebUiIngressCidr": "10.8.0.0/16", "WebUiIngressSecurityGroupId": "sg-0123456789abcdef0",
                              "InputBucketArns": "arn:aws:s3:::other-bucket"},
    "recommender-iam.yaml": {"InputBucketArns": "arn:aws:s3:::other-bucket"},
    "source-bucket.yaml": {"RunDataExpirationDays": '"0"'},
}  # fmt: skip


def checkov(directory: Path) -> dict:
    binary = REPO / ".venv-tools" / "bin" / "checkov"
    assert binary.exists(), "run scripts/bootstrap_venv.sh (make test does) to install .venv-tools"
    done = subprocess.run(
        [str(binary), "-d", str(directory), "--framework", "cloudformation", "--skip-download", "--output", "json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = json.loads(done.stdout)
    return report if isinstance(report, dict) else report[0]


def assert_clean(report: dict) -> None:
    results = report["results"]
    assert results["failed_checks"] == [], [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    for skipped in results["skipped_checks"]:
        assert len(skipped.get("check_result", {}).get("suppress_comment", "")) > 40, skipped["check_id"]
    assert report["summary"]["parsing_errors"] == 0


def test_checkov_finds_nothing_but_the_accepted_and_explained() -> None:
    report = checkov(TEMPLATES)
    assert_clean(report)
    assert report["summary"]["passed"] > 30


def with_default(text: str, parameter: str, value: str) -> str:
    """``text`` with the Default of ``parameter`` (a Parameters entry) replaced by ``value``."""
    pattern = re.compile(rf"(^  {parameter}:\n(?:    .*\n)*?    Default: ).*$", re.MULTILINE)
    changed, count = pattern.subn(lambda m: m.group(1) + value, text, count=1)
    assert count == 1, parameter
    return changed


def test_checkov_finds_nothing_in_the_optional_parts_either(tmp_path: Path) -> None:
    for template in TEMPLATES.glob("*.yaml"):
        text = template.read_text()
        for parameter, value in NON_DEFAULT_CHOICES.get(template.name, {}).items():
            text = with_default(text, parameter, value)
        (tmp_path / template.name).write_text(text)
    report = checkov(tmp_path)
    assert_clean(report)
    checked = {c["resource"] for kind in ("passed_checks", "skipped_checks") for c in report["results"][kind]}
    for resource in ("AWS::RDS::DBCluster.AuroraCluster", "AWS::RDS::DBInstance.AuroraWriter",
                     "AWS::EC2::SecurityGroupIngress.WebUiIngressFromCidr",
                     "AWS::EC2::SecurityGroupIngress.WebUiIngressFromSecurityGroup"):  # fmt: skip
        assert resource in checked, resource
