"""Read the project's CloudFormation IAM policy and decide whether it allows recorded AWS calls.

A small, explicit evaluator: Allow statements with Action/Resource wildcards and
StringEquals/StringLike conditions (all the project's template uses). Every recorded
call is turned into the IAM permissions it needs; an operation without a mapping
here fails the check, so a new kind of call cannot slip through unchecked.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "mwaa" / "cloudformation" / "recommender-iam.yaml"
SAGEMAKER_RESOURCES = {  # name parameter -> ARN resource type
    "TrainingJobName": "training-job",
    "HyperParameterTuningJobName": "hyper-parameter-tuning-job",
    "ModelName": "model",
    "TransformJobName": "transform-job",
    "ProcessingJobName": "processing-job",
}
S3_ACTIONS = {
    "GetObject": ("s3:GetObject", "object"),
    "HeadObject": ("s3:GetObject", "object"),
    "PutObject": ("s3:PutObject", "object"),
    "CreateMultipartUpload": ("s3:PutObject", "object"),
    "UploadPart": ("s3:PutObject", "object"),
    "CompleteMultipartUpload": ("s3:PutObject", "object"),
    "ListObjectsV2": ("s3:ListBucket", "bucket"),
    "ListObjects": ("s3:ListBucket", "bucket"),
    "HeadBucket": ("s3:ListBucket", "bucket"),
}


class _Tagged(dict):
    pass


def cfn_loader() -> type:
    """A YAML loader that keeps CloudFormation's short-form tags as ``{tag: value}``."""

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, node, tag):
        if isinstance(node, yaml.SequenceNode):
            return _Tagged({tag: loader.construct_sequence(node)})
        return _Tagged({tag: loader.construct_scalar(node)})

    for tag in ("!Sub", "!Ref", "!GetAtt", "!If", "!Equals", "!Select", "!GetAZs", "!Not", "!Join"):
        Loader.add_constructor(tag, lambda loader, node, tag=tag: construct(loader, node, tag))
    return Loader


def load_policy(name: str, values: dict[str, str]) -> list[dict]:
    """Statements of the policy resource ``name``, with !Sub / !Ref / !GetAtt resolved from ``values``."""
    template = yaml.load(TEMPLATE.read_text(), Loader=cfn_loader())
    resource = template["Resources"][name]
    document = resource["Properties"]["PolicyDocument"]

    def resolve(value):
        if isinstance(value, _Tagged):
            ((tag, text),) = value.items()
            if tag == "!Sub":
                for key, replacement in values.items():
                    text = text.replace("${" + key + "}", replacement)
                assert "${" not in text, f"unresolved variable in {text}"
                return text
            return values[text]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    return [resolve(s) for s in document["Statement"]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(statements: list[dict], action: str, resource: str, context: dict[str, str]) -> bool:
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatchcase(action, a) for a in _as_list(statement["Action"])):
            continue
        if not any(fnmatchcase(resource, r) for r in _as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        ok = True
        for operator, pairs in conditions.items():
            for key, expected in pairs.items():
                got = context.get(key)
                match = fnmatchcase if operator == "StringLike" else str.__eq__
                if (
                    operator not in ("StringEquals", "StringLike")
                    or got is None
                    or not any(match(got, e) for e in _as_list(expected))
                ):
                    ok = False
        if ok:
            return True
    return False


def required_permissions(call, region: str, account: str) -> list[tuple[str, str, dict]]:
    """(action, resource ARN, condition context) that the call needs."""
    p = call.params
    if call.service == "sagemaker":
        name_key = next(k for k in SAGEMAKER_RESOURCES if k in p)
        arn = f"arn:aws:sagemaker:{region}:{account}:{SAGEMAKER_RESOURCES[name_key]}/{p[name_key].lower()}"
        needs = [(f"sagemaker:{call.operation}", arn, {})]
        if p.get("Tags"):
            needs.append(("sagemaker:AddTags", arn, {}))
        role = p.get("RoleArn") or p.get("ExecutionRoleArn") or p.get("TrainingJobDefinition", {}).get("RoleArn")
        if role:
            needs.append(("iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}))
        return needs
    if call.service == "s3":
        action, kind = S3_ACTIONS[call.operation]  # KeyError: a new S3 operation needs a mapping
        resource = f"arn:aws:s3:::{p['Bucket']}" + (f"/{p['Key']}" if kind == "object" else "")
        return [(action, resource, {})]
    if call.service == "logs":
        group = p.get("logGroupName", "")
        stream = p.get("logStreamName")
        resource = f"arn:aws:logs:{region}:{account}:log-group:{group}:" + (f"log-stream:{stream}" if stream else "*")
        return [(f"logs:{call.operation}", resource, {})]
    raise AssertionError(f"no IAM mapping for {call.service}:{call.operation}")
