"""A local Airflow 3.3.1 that mirrors MWAA without Docker: start, stop, status, logs, reset-db.

The packaged plugins.zip (``mwaa/recsys-mwaa package``) is unpacked into the runner's
plugins folder as MWAA does, the packaged dags/ are the DAG folder, and the four
components (api-server, scheduler, dag-processor, triggerer) run from the project's
pinned .venv, bound to 127.0.0.1 (the scheduler's and triggerer's log servers, which
listen on every interface, are switched off). All state lives under one folder
(``.local-runner/``); ``stop`` ends only the processes ``start`` recorded.

    local-runner/mwaa-local start [--port 8080]
    local-runner/mwaa-local status | logs | stop | reset-db
    local-runner/mwaa-local test-requirements [requirements.txt] | test-startup-script startup.sh
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


class Runner:
    def __init__(self, home: Path, port: int = 8080) -> None:
        self.home = home
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTHONPATH"}
        env |= {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dist" / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(min(8, 2 * (os.cpu_count() or 1))),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }
        return env

    def _pid_file(self, component: str) -> Path:
        return self.home / "pids" / f"{component}.pid"

    def running(self) -> dict[str, int]:
        alive = {}
        for component in COMPONENTS:
            path = self._pid_file(component)
            if path.exists():
                pid = int(path.read_text())
                try:
                    os.kill(pid, 0)
                    alive[component] = pid
                except ProcessLookupError:
                    pass
        return alive

    def prepare(self) -> None:
        """Package, unpack plugins.zip into the plugins folder as MWAA does, migrate the DB."""
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(PYTHON), str(REPO / "mwaa" / "recsys-mwaa"), "package"], check=True, stdout=subprocess.DEVNULL
        )
        plugins = self.home / "plugins"
        if plugins.exists():
            subprocess.run(["rm", "-rf", str(plugins)], check=True)
        with zipfile.ZipFile(REPO / "dist" / "plugins.zip") as zf:
            zf.extractall(plugins)
        subprocess.run([str(PYTHON), "-m", "airflow", "db", "migrate"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def start(self, timeout: float = 180) -> dict:
        if self.running():
            raise SystemExit(f"already running: {self.running()} (state in {self.home}); run stop first")
        self.prepare()
        (self.home / "pids").mkdir(exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        for component, args in COMPONENTS.items():
            log = (self.home / "logs" / f"{component}.log").open("ab")
            process = subprocess.Popen([str(PYTHON), "-m", "airflow", *args], env=self.env(), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            self._pid_file(component).write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return {"url": self.url, "user": "admin", "password": self.password()}
            if len(self.running()) < len(COMPONENTS):
                self.stop()
                raise SystemExit(f"a component exited during start-up; see {self.home / 'logs'}")
            time.sleep(1)
        self.stop()
        raise SystemExit(f"the UI did not become healthy within {timeout:.0f} s; see {self.home / 'logs'}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2) as response:
                return json.load(response)["metadatabase"]["status"] == "healthy"
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            return False

    def password(self) -> str:
        path = self.home / "passwords.json"
        return json.loads(path.read_text()).get("admin", "") if path.exists() else ""

    def stop(self, timeout: float = 30) -> list[str]:
        """End the process groups start recorded (each component and its children); nothing else."""
        stopped = []
        for component, pid in self.running().items():
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            stopped.append(component)
        deadline = time.monotonic() + timeout
        for component in COMPONENTS:
            path = self._pid_file(component)
            if not path.exists():
                continue
            pid = int(path.read_text())
            while time.monotonic() < deadline and _group_alive(pid):
                time.sleep(0.2)
            if _group_alive(pid):
                os.killpg(pid, signal.SIGKILL)
            path.unlink()
        return stopped


# MWAA's startup-script rules (amazon-mwaa-docker-images, setup_environment.py): the script
# is sourced, has 5 minutes less 5 seconds, and exports of these names are dropped.
STARTUP_TIMEOUT_SECONDS = 295
PROTECTED_VARIABLES = ("AIRFLOW_HOME", "AIRFLOW_VERSION", "AWS_REGION", "PYTHONPATH", "PYTHONUNBUFFERED")
PROTECTED_PREFIXES = ("MWAA__", "ECS_")


def run_startup_script(script: Path, timeout: float = STARTUP_TIMEOUT_SECONDS) -> dict[str, str]:
    """Source ``script`` as MWAA does; return the variables it exports that MWAA would keep."""
    probe = f'set -e; source "{script}" >&2; env -0'
    try:
        done = subprocess.run(["bash", "-c", probe], capture_output=True, timeout=timeout, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        raise SystemExit(
            f"{script}: still running after {timeout:.0f} s; MWAA stops startup scripts at 5 minutes"
        ) from None
    if done.returncode:
        raise SystemExit(f"{script}: exited with {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    after = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    changed = {k: v for k, v in after.items() if os.environ.get(k) != v and k not in ("_", "SHLVL", "OLDPWD", "PWD")}
    kept = {k: v for k, v in changed.items() if k not in PROTECTED_VARIABLES and not k.startswith(PROTECTED_PREFIXES)}
    for name in sorted(set(changed) - set(kept)):
        print(f"ignored, as on MWAA: {name}")
    return kept


def test_requirements(requirements: Path) -> int:
    """Install requirements.txt into the runner's environment under MWAA's constraints; pip's exit code."""
    vendored = REPO / "requirements" / "constraints-3.3.1-py3.12.txt"
    lines = [f"--constraint {vendored}" if line.lstrip().startswith("--constraint") else line
             for line in requirements.read_text().splitlines()]  # fmt: skip
    local = requirements.with_name(".requirements-local.txt")
    local.write_text("\n".join(lines) + "\n")
    try:
        return subprocess.run(
            [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(local)]
        ).returncode
    finally:
        local.unlink(missing_ok=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mwaa-local", description=__doc__.splitlines()[0])
    parser.add_argument(
        "verb", choices=["start", "stop", "status", "logs", "reset-db", "test-requirements", "test-startup-script"]
    )
    parser.add_argument("path", nargs="?", type=Path, help="test-requirements / test-startup-script: the file")
    parser.add_argument("--home", type=Path, default=REPO / ".local-runner")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    runner = Runner(args.home, args.port)
    if args.verb == "start":
        info = runner.start()
        print(f"Airflow UI: {info['url']}  (user {info['user']}, password {info['password']})")
        print(f"state and logs: {runner.home}; stop with: local-runner/mwaa-local stop")
    elif args.verb == "stop":
        print(f"stopped: {', '.join(runner.stop()) or 'nothing was running'}")
    elif args.verb == "status":
        running = runner.running()
        for component in COMPONENTS:
            print(f"{component:<14} {'running, pid ' + str(running[component]) if component in running else 'stopped'}")
        print(f"UI {runner.url}: {'healthy' if runner.healthy() else 'not answering'}")
    elif args.verb == "logs":
        for component in COMPONENTS:
            path = runner.home / "logs" / f"{component}.log"
            if path.exists():
                print(f"== {component}")
                print("\n".join(path.read_text(errors="replace").splitlines()[-20:]))
    elif args.verb == "test-requirements":
        code = test_requirements(args.path or REPO / "requirements" / "requirements.txt")
        print(
            "requirements.txt installs under MWAA's constraints" if code == 0 else f"pip failed with exit code {code}"
        )
        return code
    elif args.verb == "test-startup-script":
        if not args.path:
            raise SystemExit("test-startup-script needs the script's path")
        for name, value in sorted(run_startup_script(args.path).items()):
            print(f"export {name}={value}")
    else:
        if runner.running():
            raise SystemExit("stop the runner before reset-db")
        subprocess.run([str(PYTHON), "-m", "airflow", "db", "reset", "--yes"], env=runner.env(), check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
