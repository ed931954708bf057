"""mwaa-local: the official MWAA local runner's verbs, without Docker.

local-runner/mwaa-local start [--port 8080] [--db sqlite|postgres | --db-url URL] [--settings FILE] [--home DIR]
local-runner/mwaa-local status | logs | stop | reset-db        [--home DIR]
local-runner/mwaa-local test-requirements [requirements.txt]
local-runner/mwaa-local test-startup-script startup.sh [--component worker|scheduler|webserver]
local-runner/mwaa-local package-requirements [requirements.txt] [--out dist/private]
local-runner/mwaa-local prepare-docker [--docker-state DIR]   # then: docker compose ... up (docs/local-runner.md)
(sync --home DIR is the runner's dag-sync component, which start launches.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mwaa_local import docker, requirements, sync
from mwaa_local.components import COMPONENTS, Runner
from mwaa_local.paths import DEFAULT_SETTINGS, REPO
from mwaa_local.startup import run_startup_script

VERBS = ["start", "stop", "status", "logs", "reset-db", "test-requirements", "test-startup-script",
         "package-requirements", "prepare-docker", "sync"]  # fmt: skip


def _start(args: argparse.Namespace) -> int:
    if args.db_url and args.db == "postgres":
        raise SystemExit("--db postgres runs the runner's own cluster; --db-url names yours: give one of them")
    runner = Runner(args.home, args.port, args.db, args.db_url or "", args.settings, not args.skip_requirements)
    info = runner.start()
    print(f"Airflow UI: {info['url']}  (log in as {info['user']}, password {info['password']})")
    print(f"database: {info['database']}")
    print(f"connections: {', '.join(info['connections']) or '-'}; variables: {', '.join(info['variables']) or '-'}"
          f" (from {args.settings})")  # fmt: skip
    if info["startup_exports"]:
        print(f"startup script exported: {', '.join(info['startup_exports'])}")
    print(f"state and logs: {runner.home}; stop with: local-runner/mwaa-local stop")
    return 0


def _status(runner: Runner) -> int:
    running = runner.running()
    for component in COMPONENTS:
        print(f"{component:<14} {'running, pid ' + str(running[component]) if component in running else 'stopped'}")
    db_pids = runner.database.pids()
    print(f"{'database':<14} {runner.database.describe()}" + (f", pid {db_pids[0]}" if db_pids else ""))
    health = runner.health() if "api-server" in running else {}
    report = ", ".join(f"{k} {v}" for k, v in health.items()) if health else "not answering"
    print(f"UI {runner.url}: {report}")
    return 0


def _logs(runner: Runner, lines: int = 20) -> int:
    paths = [(c, runner.home / "logs" / f"{c}.log") for c in COMPONENTS]
    paths.append(("postgres", runner.database.cluster / "server.log"))
    for name, path in paths:
        if path.exists():
            print(f"== {name} ({path})")
            print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    return 0


def _package_requirements(args: argparse.Namespace) -> int:
    source = args.path or REPO / "requirements" / "requirements.txt"
    result = requirements.package_requirements(source, args.out.resolve())
    print(f"{len(result['wheels'])} wheels for MWAA (Python {requirements.MWAA_PYTHON_VERSION}, manylinux x86_64):")
    for name in result["wheels"]:
        print(f"  {name}")
    size = result["plugins_zip_bytes"]
    print(f"{result['root']}: dags/, plugins.zip ({size / 2**20:.1f} MiB with the wheels), requirements.txt "
          "(--no-index, installs from plugins.zip); checked: the wheels alone install it")  # fmt: skip
    if size > 2**30:
        print("warning: plugins.zip is over 1 GB, MWAA's recommended limit")
    print(f"check and deploy it with: mwaa/recsys-mwaa validate --dist {result['root']}; mwaa/recsys-mwaa deploy "
          f"--dist {result['root']} ...")  # fmt: skip
    return 0


def _test_requirements(args: argparse.Namespace) -> int:
    code = requirements.install(args.path or REPO / "requirements" / "requirements.txt", dry_run=True)
    if code:
        print(f"pip failed with exit code {code}")
    else:
        print("requirements.txt resolves and downloads under MWAA's constraints (pip dry run; the runner's "
              "environment is unchanged)")  # fmt: skip
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mwaa-local", description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=VERBS)
    parser.add_argument("path", nargs="?", type=Path, help="the requirements.txt or startup script to test/package")
    parser.add_argument("--home", type=Path, default=REPO / ".local-runner", help="state folder (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                        help="postgres: a private cluster from this machine's PostgreSQL binaries")  # fmt: skip
    parser.add_argument("--db-url", help="a PostgreSQL server you run: postgresql+psycopg2://user:pw@host:port/db")
    parser.add_argument("--settings", type=Path, default=DEFAULT_SETTINGS, help="default: %(default)s")
    parser.add_argument("--skip-requirements", action="store_true", help="start without the pip install step")
    parser.add_argument("--component", default="worker", choices=["worker", "scheduler", "webserver"],
                        help="test-startup-script: the MWAA_AIRFLOW_COMPONENT the script sees")  # fmt: skip
    parser.add_argument("--source", type=Path, default=REPO, help="sync: the checkout to mirror (default: this one)")
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "private", help="package-requirements output")
    parser.add_argument("--docker-state", type=Path, default=docker.DEFAULT_STATE,
                        help="prepare-docker output (compose reads it as MWAA_LOCAL_STATE)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.verb == "start":
        return _start(args)
    if args.verb == "test-requirements":
        return _test_requirements(args)
    if args.verb == "test-startup-script":
        if not args.path:
            raise SystemExit("test-startup-script needs the script's path")
        for name, value in sorted(run_startup_script(args.path, args.component, echo=True).items()):
            print(f"export {name}={value}")
        return 0
    if args.verb == "package-requirements":
        return _package_requirements(args)
    if args.verb == "sync":
        sync.run(args.home.resolve(), repo=args.source.resolve())
        return 0
    if args.verb == "prepare-docker":
        state = docker.prepare(args.docker_state.resolve(), args.settings)
        print(f"{state}: plugins/, startup/, recommender-data/, airflow.env (generated secrets, mode 0600)")
        if state != docker.DEFAULT_STATE:
            print(f"export MWAA_LOCAL_STATE={state} before docker compose")
        print(f"next: docker compose -f {docker.COMPOSE_FILE.relative_to(REPO)} up --build  (UI http://127.0.0.1:8080)")
        return 0
    runner = Runner.from_state(args.home, args.port)
    if args.verb == "stop":
        print(f"stopped: {', '.join(runner.stop()) or 'nothing was running'}")
        return 0
    if args.verb == "status":
        return _status(runner)
    if args.verb == "logs":
        return _logs(runner)
    print(runner.reset_db())
    return 0
