"""Command line: ``recsys-mwaa package`` and ``recsys-mwaa validate``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from recsys_mwaa import packaging, validation


def _package(args: argparse.Namespace) -> int:
    package = packaging.build(args.out)
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
            f"DAGs {', '.join(report['dags']) or '-'} parsed in {report['seconds']:.2f} s (including Airflow's import)"
        )
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{package.root}: valid for MWAA (Airflow 3.3.1)")
    return 0


def _clients(args: argparse.Namespace) -> tuple:
    import boto3

    session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
    return session.client("s3"), session.client("mwaa")


def _existing_package(dist: Path) -> packaging.Package | None:
    package = packaging.Package(dist)
    if not package.plugins_zip.exists():
        print(f"{package.root}: no package here; run `recsys-mwaa package` first", file=sys.stderr)
        return None
    return package


def _reported(call: Callable[[], object]) -> int:
    """Run a deploy-module command; a DeployError becomes its reason on stderr and exit code 1."""
    from recsys_mwaa.deploy import DeployError

    try:
        call()
    except DeployError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from recsys_mwaa.deploy import deploy

    package = _existing_package(args.dist)
    if package is None:
        return 2
    s3, mwaa = _clients(args)
    return _reported(lambda: deploy(package, s3, mwaa, args.bucket, args.environment, prefix=args.prefix,
                                    dry_run=args.dry_run, delete_removed=args.delete_removed,
                                    poll_seconds=args.poll_seconds))  # fmt: skip


def _rollback(args: argparse.Namespace) -> int:
    from recsys_mwaa.deploy import rollback

    s3, mwaa = _clients(args)
    return _reported(lambda: rollback(s3, mwaa, args.bucket, args.environment, prefix=args.prefix,
                                      dry_run=args.dry_run, poll_seconds=args.poll_seconds))  # fmt: skip


def _status(args: argparse.Namespace) -> int:
    from recsys_mwaa.deploy import status

    _, mwaa = _clients(args)
    for key, value in status(mwaa, args.environment).items():
        print(f"{key:<22} {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recsys-mwaa", description="Package and validate the recommender workflow for Amazon MWAA."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    package = commands.add_parser("package", help="build dist/: dags/, plugins.zip, requirements.txt, manifest.json")
    package.add_argument("--out", type=Path, default=packaging.REPO / "dist")
    package.set_defaults(run=_package)
    validate = commands.add_parser("validate", help="check the package: zip layout and size, requirements, DAG import")
    validate.add_argument("--dist", type=Path, default=packaging.REPO / "dist")
    validate.add_argument("--skip-resolution", action="store_true", help="skip pip's resolution of requirements.txt")
    validate.set_defaults(run=_validate)
    for name, helptext, run in (
        ("deploy", "upload what changed to the environment's bucket and update the environment", _deploy),
        ("rollback", "go back to the previous plugins.zip / requirements.txt / DAG versions", _rollback),
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
        if name == "deploy":
            sub.add_argument("--dist", type=Path, default=packaging.REPO / "dist")
            sub.add_argument("--delete-removed", action="store_true", help="delete DAG files no longer in the package")
    args = parser.parse_args(argv)
    return args.run(args)
