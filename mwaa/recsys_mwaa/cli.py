"""Command line: ``recsys-mwaa package | validate | deploy | rollback | status | destroy``."""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from recsys_mwaa import packaging, validation


def _package(args: argparse.Namespace) -> int:
    from recsys_mwaa.custom_constraints import ConstraintsError

    try:
        package = packaging.build(args.out, constraints=args.constraints)
    except ConstraintsError as exc:  # its message names the file and line
        print(f"FAIL: {exc}", file=sys.stderr)
        return 2
    for key, path in package.files().items():
        print(f"{key:<40} {path.stat().st_size:>10,} bytes  sha256 {packaging.sha256(path)[:16]}")
    print(f"package written to {package.root}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    package = _existing_package(args.dist)
    if package is None:
        return 2
    problems = validation.zip_problems(package)
    problems += validation.requirements_problems(package, resolve=not args.skip_resolution)
    report = validation.dag_report(package)
    problems += validation.dag_problems(report)
    if report["seconds"] is not None:
        print(
            f"DAGs {', '.join(report['dags']) or '-'} parsed in {report['seconds']:.2f} s by the DagBag in the MWAA-exact environment"
        )
    if "plugins" in report:
        links = ", ".join(name.rsplit(".", 1)[-1] for name in report["links"]) or "-"
        print(f"plugins: {', '.join(report['plugins']) or '-'} (links: {links}); "
              f"{len(report['plugin_errors'])} plugin import errors, {len(report['bare_modules'])} bare modules")  # fmt: skip
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{package.root}: valid for MWAA (Airflow 3.3.1)")
    return 0


def _clients(args: argparse.Namespace) -> tuple:
    import boto3

    # boto3 reads AWS_DEFAULT_REGION only; AWS_REGION too, as the AWS CLI v2 does (it wins over the profile's).
    region = args.region or os.environ.get("AWS_REGION") or None
    session = boto3.session.Session(profile_name=args.profile, region_name=region)
    mwaa = session.client("mwaa")
    args.region = mwaa.meta.region_name  # the region resolved from env / profile, for error messages
    return session.client("s3"), mwaa


def _destroy_clients(args: argparse.Namespace) -> tuple:
    import boto3

    region = args.region or os.environ.get("AWS_REGION") or None
    session = boto3.session.Session(profile_name=args.profile, region_name=region)
    cfn = session.client("cloudformation")
    args.region = cfn.meta.region_name
    return cfn, session.client("s3")


def _existing_package(dist: Path) -> packaging.Package | None:
    package = packaging.Package(dist)
    if not package.plugins_zip.exists():
        print(f"{package.root}: no package here; run `recsys-mwaa package` first", file=sys.stderr)
        return None
    return package


# ClientError codes by what the user should check.
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "UnauthorizedOperation"}
CREDENTIALS_REFUSED = {"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId"}
CREDENTIALS_REFUSED |= {"SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "AuthFailure"}


def _aws_problem(exc: Exception, args: argparse.Namespace) -> str:
    """What to set or check for a botocore error, in one line."""
    from botocore import exceptions as aws

    who = f"profile {args.profile}" if args.profile else "the credentials in use"
    if isinstance(exc, aws.NoRegionError):
        return "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION (or region in the profile) or pass --region"
    if isinstance(exc, aws.ProfileNotFound):
        return f"no AWS profile {args.profile!r}: check --profile / AWS_PROFILE and the AWS config file"
    if isinstance(exc, (aws.NoCredentialsError, aws.PartialCredentialsError)):
        found = "none found" if isinstance(exc, aws.NoCredentialsError) else str(exc)
        return (f"no AWS credentials ({found}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE / --profile (after `aws configure` or `aws sso login`)")  # fmt: skip
    if isinstance(exc, aws.ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), " ".join(str(error.get("Message") or "").split())
        if code == "ValidationError" and exc.operation_name == "DescribeStacks" and "does not exist" in message:
            return (f"no CloudFormation stack in {args.region}: {message}; check --stack and --region "
                    f"(aws cloudformation list-stacks --region {args.region})")  # fmt: skip
        if code == "ResourceNotFoundException":
            return (f"no MWAA environment {getattr(args, 'environment', None)!r} in {args.region}: check --environment and "
                    f"--region (aws mwaa list-environments --region {args.region})")  # fmt: skip
        if code == "NoSuchBucket":
            bucket = exc.response.get("Error", {}).get("BucketName") or getattr(args, "bucket", None)
            return f"no bucket {bucket!r}: check --bucket (the environment's source bucket)"
        if code in ACCESS_DENIED:
            return (f"access denied to {exc.operation_name} in {args.region} for {who}: grant it in their IAM "
                    f"policy or use other credentials (aws sts get-caller-identity){': ' + message if message else ''}")  # fmt: skip
        if code in CREDENTIALS_REFUSED:
            return f"AWS refused {who} ({code}): check or refresh them (aws sts get-caller-identity)"
        names = "--stack, --bucket" if getattr(args, "command", None) == "destroy" else "--environment, --bucket"
        return (f"AWS {exc.operation_name} in {args.region} failed: {code}: {message or 'no message'}; "
                f"check {names} and --region")  # fmt: skip
    if isinstance(exc, aws.EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'AWS')}: check the network / proxy and --region"
    return f"AWS error: {' '.join(str(exc).split())}; check --region, --profile and the credentials"


def _aws_command(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """For the commands that call AWS: a DeployError becomes its reason and exit code 1, a botocore
    error (no region or credentials, access denied, no such environment, ...) one line saying what
    to set or check and exit code 2; neither a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        from recsys_mwaa.deploy import DeployError

        try:
            return command(args)
        except DeployError as exc:
            print(f"FAIL: {exc}", file=sys.stderr)
            return 1
        except (BotoCoreError, ClientError) as exc:
            print(f"FAIL: {_aws_problem(exc, args)}", file=sys.stderr)
            return 2

    return run


@_aws_command
def _deploy(args: argparse.Namespace) -> int:
    from recsys_mwaa.deploy import deploy
    from recsys_mwaa.smoke import dag_source, smoke

    package = _existing_package(args.dist)
    if package is None:
        return 2
    try:
        conf = json.loads(args.smoke_conf)
    except json.JSONDecodeError as exc:
        conf = f"not JSON: {exc}"
    if not isinstance(conf, dict):  # a DAG run's conf is an object
        print(f"FAIL: --smoke-conf is {conf if isinstance(conf, str) else 'not a JSON object'}", file=sys.stderr)
        return 2
    s3, mwaa = _clients(args)
    deploy(package, s3, mwaa, args.bucket, args.environment, prefix=args.prefix, dry_run=args.dry_run,
           delete_removed=args.delete_removed, startup_script=args.startup_script, startup_key=args.startup_script_key,
           worker_replacement=args.worker_replacement, poll_seconds=args.poll_seconds)  # fmt: skip
    if not args.smoke:
        return 0
    if args.dry_run:
        print("dry run: no smoke run")
        return 0
    state = smoke(mwaa, args.environment, args.smoke_dag, conf, source=dag_source(package.dags, args.smoke_dag),
                  timeout_seconds=args.smoke_timeout * 60, poll_seconds=args.smoke_poll_seconds)  # fmt: skip
    if state != "success":
        print(f"FAIL: smoke run of {args.smoke_dag} on {args.environment} ended {state}", file=sys.stderr)
        return 1
    return 0


@_aws_command
def _rollback(args: argparse.Namespace) -> int:
    from recsys_mwaa.deploy import rollback

    s3, mwaa = _clients(args)
    rollback(s3, mwaa, args.bucket, args.environment, prefix=args.prefix, dry_run=args.dry_run,
             worker_replacement=args.worker_replacement, poll_seconds=args.poll_seconds)  # fmt: skip
    return 0


@_aws_command
def _status(args: argparse.Namespace) -> int:
    from recsys_mwaa.deploy import status

    _, mwaa = _clients(args)
    for key, value in status(mwaa, args.environment).items():
        print(f"{key:<22} {value}")
    return 0


def _interactive() -> bool:
    return sys.stdin.isatty()


def _finish_command(args: argparse.Namespace, bucket: str) -> str:
    words = ["recsys-mwaa", "destroy", "--bucket", bucket, "--yes-delete-bucket-contents", bucket]
    words += ["--region", args.region] + (["--profile", args.profile] if args.profile else [])
    return shlex.join(words)


@_aws_command
def _destroy(args: argparse.Namespace) -> int:
    """Delete the stacks; delete the bucket they retain only once its name is confirmed."""
    from recsys_mwaa import destroy

    if not args.stack and not args.bucket:
        print("FAIL: destroy needs --stack (the stack to delete) or --bucket (a bucket a deleted stack kept)",
              file=sys.stderr)  # fmt: skip
        return 2
    cfn, s3 = _destroy_clients(args)
    stacks = [destroy.find_stack(cfn, name) for name in args.stack]
    buckets = list(dict.fromkeys([s.bucket for s in stacks if s.bucket] + args.bucket))
    confirmed: set[str] = set()
    for given in args.yes_delete_bucket_contents:
        if given not in buckets:
            print(f"FAIL: --yes-delete-bucket-contents {given!r} does not name the bucket to delete "
                  f"({', '.join(buckets) or 'none found'}); give its name exactly; nothing was deleted",
                  file=sys.stderr)  # fmt: skip
            return 2
        confirmed.add(given)
    if not args.yes_delete_bucket_contents and _interactive():
        for bucket in buckets:
            contents = destroy.count_contents(s3, bucket)
            try:
                answer = input(f"Bucket {bucket} holds {contents}. To delete them and the bucket after the "
                               "stack, type its name; to keep it, press Enter: ").strip()  # fmt: skip
            except EOFError:
                answer = ""
            if answer == bucket:
                confirmed.add(bucket)
            elif answer:
                print(f"FAIL: {answer!r} is not {bucket!r}; nothing was deleted (press Enter to keep the bucket)",
                      file=sys.stderr)  # fmt: skip
                return 2
    from_stacks = {s.bucket for s in stacks}
    for bucket in confirmed - from_stacks:  # named with --bucket: only what a deleted stack of ours kept
        try:
            destroy.check_retained(s3, cfn, bucket)
        except destroy.NotARetainedBucket as exc:
            print(f"FAIL: {exc}; destroy deletes only a bucket its deleted stack kept; nothing was deleted",
                  file=sys.stderr)  # fmt: skip
            return 2
    for stack in stacks:
        destroy.delete_stack(cfn, stack, poll_seconds=args.poll_seconds, timeout_seconds=args.timeout * 60)
    for bucket in buckets:
        if bucket in confirmed:
            destroy.empty_and_delete_bucket(s3, bucket)
        else:
            contents = destroy.count_contents(s3, bucket)
            print(f"kept bucket {bucket}: {contents} remain ({contents.total} in all); to delete them and "
                  f"the bucket:\n   {_finish_command(args, bucket)}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recsys-mwaa", description="Package and validate the recommender workflow for Amazon MWAA."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    package = commands.add_parser("package", help="build dist/: dags/, plugins.zip, requirements.txt, manifest.json")
    package.add_argument("--out", type=Path, default=packaging.REPO / "dist")
    package.add_argument("--constraints", type=Path, default=None,
                         help="a custom constraints file (keeping MWAA's essential pins), shipped in dags/")  # fmt: skip
    package.set_defaults(run=_package)
    validate = commands.add_parser("validate", help="check the package: zip layout and size, requirements, DAG import")
    validate.add_argument("--dist", type=Path, default=packaging.REPO / "dist")
    validate.add_argument("--skip-resolution", action="store_true", help="skip pip's resolution of requirements.txt")
    validate.set_defaults(run=_validate)
    for name, helptext, run in (
        ("deploy", "upload what changed to the environment's bucket and update the environment", _deploy),
        ("rollback", "go back to the state recorded before the current deployment manifest", _rollback),
        ("status", "the environment's status, object versions and UI URL", _status),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--environment", required=True, help="MWAA environment name")
        sub.add_argument("--region", default=None)
        sub.add_argument("--profile", default=None)
        sub.set_defaults(run=run)
        if name in ("deploy", "rollback"):
            sub.add_argument("--bucket", required=True, help="the environment's source bucket (versioned)")
            sub.add_argument("--prefix", default="", help="key prefix of dags/, plugins.zip, requirements.txt")
            sub.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
            sub.add_argument("--poll-seconds", type=float, default=30)
            sub.add_argument("--worker-replacement", choices=("GRACEFUL", "FORCED"), default="GRACEFUL",
                             help="UpdateEnvironment's WorkerReplacementStrategy: GRACEFUL lets running tasks "
                             "finish (up to 12 h), FORCED replaces workers at once")  # fmt: skip
        if name == "deploy":
            sub.add_argument("--dist", type=Path, default=packaging.REPO / "dist")
            sub.add_argument("--delete-removed", action="store_true", help="delete DAG files no longer in the package")
            sub.add_argument("--startup-script", type=Path, default=None, help="a startup script (.sh) for MWAA to run")
            sub.add_argument(
                "--startup-script-key", default="startup.sh", help="its key in the bucket (under --prefix)"
            )
            sub.add_argument("--smoke", action="store_true", help="then trigger a small run through InvokeRestApi")
            sub.add_argument("--smoke-dag", default="video_recommender")
            sub.add_argument("--smoke-conf", default='{"synthetic_scale": 0.01}', help="the run's conf (JSON)")
            sub.add_argument("--smoke-timeout", type=float, default=60, help="minutes, waits included")
            sub.add_argument("--smoke-poll-seconds", type=float, default=30)
    destroy = commands.add_parser(
        "destroy",
        help="delete the stack(s); then the bucket they retain, its every version, only when its name is confirmed",
    )
    destroy.add_argument("--stack", action="append", default=[], help="a stack to delete (repeatable)")
    destroy.add_argument("--bucket", action="append", default=[],
                         help="a bucket to delete besides the stacks' (e.g. one an earlier destroy kept)")  # fmt: skip
    destroy.add_argument("--yes-delete-bucket-contents", action="append", default=[], metavar="BUCKET",
                         help="delete this bucket's every object version and delete marker, and the bucket, "
                         "without asking; must be its exact name")  # fmt: skip
    destroy.add_argument("--region", default=None)
    destroy.add_argument("--profile", default=None)
    destroy.add_argument("--poll-seconds", type=float, default=15)
    destroy.add_argument("--timeout", type=float, default=180, help="minutes to wait for each stack's deletion")
    destroy.set_defaults(run=_destroy)
    args = parser.parse_args(argv)
    return args.run(args)
