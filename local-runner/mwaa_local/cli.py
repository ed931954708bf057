"""mwaa-local: the official MWAA local runner's verbs, without Docker.

local-runner/mwaa-local start [--port 8080] [--db sqlite|postgres | --db-url URL] [--settings FILE]
local-runner/mwaa-local status | logs | stop | reset-db
local-runner/mwaa-local test-requirements [requirements.txt]
local-runner/mwaa-local test-startup-script startup.sh
local-runner/mwaa-local package-requirements [requirements.txt] [--out dist/private]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mwaa_local import docker, requirements
from mwaa_local.components import COMPONENTS, Runner
from mwaa_local.paths import DEFAULT_SETTINGS, REPO
from mwaa_local.startup import run_startup_script

VERBS = ["start", "stop", "status", "logs", "reset-db", "test-requirements", "test-startup-script",
         "package-requirements", "prepare-docker"]  # fmt: skip


def _start(args: argparse.Namespace) -> int:
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
    print(f"UI {runner.url}: {'healthy' if runner.healthy() else 'not answering'}")
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
    result = requirements.package_requirements(source, args.out)
    print(f"{len(result['wheels'])} wheels for MWAA (Python {requirements.MWAA_PYTHON_VERSION}, manylinux x86_64):")
    for name in result["wheels"]:
        print(f"  {name}")
    size = result["plugins_zip_bytes"]
    print(f"{result['root']}: dags/, plugins.zip ({size / 2**20:.1f} MiB with the wheels), requirements.txt "
          "(--no-index, installs from plugins.zip); checked: the wheels alone install it")  # fmt: skip
    if size > 2**30:
        print("warning: plugins.zip is over 1 GB, MWAA's recommended limit")
    print(f"deploy it with: mwaa/recsys-mwaa deploy --dist {result['root']} ...")
    return 0


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
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "private", help="package-requirements output")
    args = parser.parse_args(argv)
    if args.verb == "start":
        return _start(args)
    if args.verb == "test-requirements":
        code = requirements.install(args.path or REPO / "requirements" / "requirements.txt")
        print(
            "requirements.txt installs under MWAA's constraints" if code == 0 else f"pip failed with exit code {code}"
        )
        return code
    if args.verb == "test-startup-script":
        if not args.path:
            raise SystemExit("test-startup-script needs the script's path")
        for name, value in sorted(run_startup_script(args.path).items()):
            print(f"export {name}={value}")
        return 0
    if args.verb == "package-requirements":
        return _package_requirements(args)
    if args.verb == "prepare-docker":
        state = docker.prepare(settings_path=args.settings)
        print(f"{state}: plugins/, startup/, recommender-data/, airflow.env (generated secrets, mode 0600)")
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
