"""Read the project's CloudFormation IAM policies and decide whether they allow recorded AWS calls.

A small, explicit evaluator: Allow statements with Action/Resource wildcards and
StringEquals/StringLike conditions (all the project's template uses). Every recorded
call is turned into the IAM permissions it needs; an operation without a mapping
here fails the check, so a new kind of call cannot slip through unchecked.

Two principals: the caller (the MWAA execution role, ``MwaaSageMakerPolicy``) and the
SageMaker execution role a job request names (``SageMakerExecutionRole``), as which
SageMaker itself pulls the job's image, reads its inputs and writes its outputs and logs
(``execution_role_permissions``).
"""

from __future__ import annotations

import re
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
# SageMaker calls after which SageMaker acts as the request's execution role.
CREATES_WORK = {"CreateProcessingJob", "CreateTrainingJob", "CreateHyperParameterTuningJob", "CreateModel",
                "CreateTransformJob"}  # fmt: skip
SAGEMAKER_LIST_ACTIONS = {"ListModels"}
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
            return _Tagged({tag: loader.construct_sequence(node, deep=True)})
        if isinstance(node, yaml.MappingNode):
            return _Tagged({tag: loader.construct_mapping(node, deep=True)})
        return _Tagged({tag: loader.construct_scalar(node)})

    for tag in TAGS:
        Loader.add_constructor(tag, lambda loader, node, tag=tag: construct(loader, node, tag))
    return Loader


TAGS = ("!Sub", "!Ref", "!GetAtt", "!If", "!Equals", "!Select", "!GetAZs", "!Not", "!Join", "!Split",
        "!FindInMap", "!And", "!Or", "!Condition", "!Base64", "!Cidr")  # fmt: skip
_NO_VALUE = object()  # what !Ref AWS::NoValue resolves to: the list item or key disappears


def load_policy(name: str, values: dict[str, str | list[str]]) -> list[dict]:
    """Statements of the policy resource ``name`` (a managed policy, or a role's inline policies),
    resolved as CloudFormation would: parameters and pseudo parameters from ``values`` (a
    CommaDelimitedList as a list or a comma-separated string; a parameter not given takes its
    Default), ``!GetAtt`` from ``values`` too, ``!FindInMap`` from the template's Mappings,
    ``!If`` from its Conditions; a statement that resolves to AWS::NoValue is left out."""
    template = yaml.load(TEMPLATE.read_text(), Loader=cfn_loader())
    resource = template["Resources"][name]["Properties"]
    documents = (
        [p["PolicyDocument"] for p in resource["Policies"]] if "Policies" in resource else [resource["PolicyDocument"]]
    )
    resolve = _resolver(template, values)
    return [s for document in documents for s in resolve(document["Statement"])]


def resolve(template: dict, values: dict, value):
    """``value`` (part of ``template``) as CloudFormation resolves it with parameters ``values``."""
    return _resolver(template, values)(value)


def _resolver(template: dict, values: dict):
    parameters = template.get("Parameters", {})

    def ref(key: str):
        if key == "AWS::NoValue":
            return _NO_VALUE
        value = values[key] if key in values else parameters[key]["Default"]
        if parameters.get(key, {}).get("Type", "").startswith(("CommaDelimitedList", "List<")):
            return value if isinstance(value, list) else value.split(",")
        return value

    def condition(key: str) -> bool:
        return bool(resolve(template["Conditions"][key]))

    def sub(text: str, variables: dict) -> str:
        for key, replacement in variables.items():
            text = text.replace("${" + key + "}", str(replacement))
        for key in re.findall(r"\$\{([^}!]+)\}", text):
            text = text.replace("${" + key + "}", str(values[key] if "." in key else ref(key)))
        assert "${" not in text, f"unresolved variable in {text}"
        return text

    def resolve(value):
        if isinstance(value, _Tagged):
            ((tag, arg),) = value.items()
            if tag == "!Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], resolve(arg[1]))
                return sub(text, variables)
            if tag == "!Ref":
                return ref(arg)
            if tag == "!GetAtt":
                return values[arg if isinstance(arg, str) else ".".join(arg)]
            if tag == "!FindInMap":
                mapping, key, attribute = resolve(arg)
                return template["Mappings"][mapping][key][attribute]
            if tag == "!If":
                chosen = arg[1] if condition(arg[0]) else arg[2]
                return resolve(chosen)
            if tag == "!Condition":
                return condition(arg)
            args = resolve(arg)
            operations = {
                "!Equals": lambda a: a[0] == a[1],
                "!Not": lambda a: not a[0],
                "!And": all,
                "!Or": any,
                "!Join": lambda a: a[0].join(a[1]),
                "!Split": lambda a: a[1].split(a[0]),
                "!Select": lambda a: a[1][int(a[0])],
            }
            return operations[tag](args)
        if isinstance(value, dict):
            resolved = {k: resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [v for v in (resolve(item) for item in value) if v is not _NO_VALUE]
        return value

    return resolve


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(statements: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    context = context or {}
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


def required_permissions(call, region: str, account: str, principal: str = "caller") -> list[tuple[str, str, dict]]:
    """(action, resource ARN, condition context) that the call needs: of its caller (the default,
    checked against the MWAA policy), or with ``principal="execution-role"`` of the SageMaker
    execution role the call names (checked against ``SageMakerExecutionRole``'s policy): for a
    CreateProcessingJob or CreateTrainingJob the ECR pull of its image, its S3 reads and writes and
    its logs; nothing for a call that starts no SageMaker work."""
    p = call.params
    if principal == "execution-role":
        starts_work = call.service == "sagemaker" and call.operation in CREATES_WORK
        return execution_role_permissions(p, region, account) if starts_work else []
    assert principal == "caller", principal
    if call.service == "sagemaker" and call.operation in SAGEMAKER_LIST_ACTIONS:
        return [(f"sagemaker:{call.operation}", "*", {})]  # list actions have no resource ARN
    if call.service == "sagemaker":
        name_key = next((k for k in SAGEMAKER_RESOURCES if k in p), None)
        assert name_key, f"no IAM mapping for sagemaker:{call.operation} {sorted(p)}"
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


# --- what SageMaker does as the execution role a job request names -------------------------
# https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html (the "<API>: Execution
# Role Permissions" sections): the role pulls the job's image from ECR, reads its S3 inputs,
# writes its S3 outputs, and writes CloudWatch logs and metrics.
ECR_PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
_ECR_IMAGE = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[^/]+/(?P<repository>[^:@]+)")
_LOG_GROUPS = {  # SageMaker's log group (and metrics namespace) per job kind
    "TrainingJobName": "/aws/sagemaker/TrainingJobs",
    "ProcessingJobName": "/aws/sagemaker/ProcessingJobs",
    "TransformJobName": "/aws/sagemaker/TransformJobs",
    "HyperParameterTuningJobName": "/aws/sagemaker/TrainingJobs",  # its training jobs log there
}


def partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def _image_pull(uri: str) -> list[tuple[str, str, dict]]:
    image = _ECR_IMAGE.match(uri)
    assert image, f"not an ECR image URI: {uri}"
    arn = f"arn:{partition(image['region'])}:ecr:{image['region']}:{image['account']}:repository/{image['repository']}"
    return [("ecr:GetAuthorizationToken", "*", {})] + [(action, arn, {}) for action in ECR_PULL]


def _s3(uri: str, action: str, prefix: bool) -> list[tuple[str, str, dict]]:
    """``action`` on the object ``uri`` or (``prefix``) on every object under it, literally ``<prefix>*``
    (a policy pattern matches that only if it matches every key under the prefix); a read of a
    prefix also lists the bucket."""
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    needs = [(action, f"arn:aws:s3:::{bucket}/{key}{'*' if prefix else ''}", {})]
    if action == "s3:GetObject" and prefix:
        needs.append(("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": key}))
    return needs


def execution_role_permissions(request: dict, region: str, account: str) -> list[tuple[str, str, dict]]:
    """(action, resource ARN, condition context) SageMaker performs as the request's execution role
    for a CreateProcessingJob, CreateTrainingJob, CreateHyperParameterTuningJob, CreateModel or
    CreateTransformJob request (a transform job runs as its model's role: its image is the model's)."""
    if "TrainingJobDefinition" in request:  # tuning: each training job of the definition
        definition = {**request["TrainingJobDefinition"], "TrainingJobName": request["HyperParameterTuningJobName"]}
        return execution_role_permissions(definition, region, account)
    needs: list[tuple[str, str, dict]] = []
    if "ProcessingJobName" in request:
        needs += _image_pull(request["AppSpecification"]["ImageUri"])
        for item in request.get("ProcessingInputs", []):
            s3_input = item["S3Input"]
            needs += _s3(s3_input["S3Uri"], "s3:GetObject", prefix=s3_input["S3DataType"] == "S3Prefix")
        for item in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
            needs += _s3(item["S3Output"]["S3Uri"].rstrip("/") + "/", "s3:PutObject", prefix=True)
    elif "TrainingJobName" in request:
        needs += _image_pull(request["AlgorithmSpecification"]["TrainingImage"])
        for channel in request.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]
            needs += _s3(source["S3Uri"], "s3:GetObject", prefix=source["S3DataType"] == "S3Prefix")
        needs += _s3(request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + "/", "s3:PutObject", prefix=True)
    elif "TransformJobName" in request:
        source = request["TransformInput"]["DataSource"]["S3DataSource"]
        needs += _s3(source["S3Uri"], "s3:GetObject", prefix=source["S3DataType"] == "S3Prefix")
        needs += _s3(request["TransformOutput"]["S3OutputPath"].rstrip("/") + "/", "s3:PutObject", prefix=True)
    elif "ModelName" in request and "PrimaryContainer" in request:
        container = request["PrimaryContainer"]
        needs += _image_pull(container["Image"])
        if container.get("ModelDataUrl"):
            needs += _s3(container["ModelDataUrl"], "s3:GetObject", prefix=False)
        return needs  # CreateModel itself writes no logs
    else:
        raise AssertionError(f"no execution-role mapping for a request with {sorted(request)}")
    name_key = next(k for k in _LOG_GROUPS if k in request)
    group = _LOG_GROUPS[name_key]
    logs = f"arn:aws:logs:{region}:{account}:log-group:{group}"
    needs += [
        ("logs:CreateLogGroup", f"{logs}:*", {}),
        ("logs:CreateLogStream", f"{logs}:log-stream:{request[name_key]}/*", {}),
        ("logs:PutLogEvents", f"{logs}:log-stream:{request[name_key]}/*", {}),
        ("logs:DescribeLogStreams", f"{logs}:*", {}),
        ("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": group}),
    ]
    return needs
