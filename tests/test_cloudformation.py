"""CloudFormation templates: cfn-lint clean, and the properties MWAA and the brief require."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from iam_policy import cfn_loader

TEMPLATES = sorted((Path(__file__).resolve().parent.parent / "mwaa" / "cloudformation").glob("*.yaml"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_is_clean(template: Path) -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert cfn_lint, "cfn-lint (installed with moto) is missing from the venv"
    done = subprocess.run([cfn_lint, str(template)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_environment_stack_has_what_mwaa_and_the_brief_require() -> None:
    path = next(p for p in TEMPLATES if p.name == "mwaa-environment.yaml")
    template = yaml.load(path.read_text(), Loader=cfn_loader())
    resources = template["Resources"]
    bucket = resources["SourceBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    tls = resources["SourceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    environment = resources["Environment"]["Properties"]
    assert environment["AirflowVersion"] == "3.3.1"
    assert template["Parameters"]["WebserverAccessMode"]["Default"] == "PRIVATE_ONLY"
    logs = environment["LoggingConfiguration"]
    assert len(logs) == 5 and all(v["Enabled"] for v in logs.values())
    assert resources["RecommenderIam"]["Properties"]["TemplateURL"] == "recommender-iam.yaml"
    assert environment["AirflowConfigurationOptions"]["recommender.backend"] == "sagemaker"
    ingress = resources["SecurityGroupSelfIngress"]["Properties"]
    assert "CidrIp" not in ingress  # components reach each other only, nothing from outside
