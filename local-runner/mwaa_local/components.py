"""The four Airflow 3.3.1 components, started and stopped as MWAA's image would run them.

``start`` follows MWAA's order: the startup script (its rules), requirements.txt under
the constraints, then Airflow. The packaged plugins.zip (``mwaa/recsys-mwaa package``)
is unpacked into the runner's plugins folder as MWAA does, the packaged dags/ are the
DAG folder, and api-server, scheduler, dag-processor and triggerer run from the
project's pinned .venv bound to 127.0.0.1 (the scheduler's and triggerer's log servers,
which listen on every interface, are switched off). All state lives under one folder;
``stop`` ends only the process groups ``start`` recorded, and the runner's own
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from mwaa_local import requirements
from mwaa_local.database import Database
from mwaa_local.paths import DEFAULT_SETTINGS, PYTHON, REPO
from mwaa_local.settings_file import RunnerSettings, load
from mwaa_local.startup import run_startup_script

COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class Runner:
    def __init__(
        self,
        home: Path,
        port: int = 8080,
        database: str = "sqlite",
        db_url: str = "",
        settings_path: Path = DEFAULT_SETTINGS,
        install_requirements: bool = True,
    ) -> None:
        self.home = home
        self.port = port
        self.database = Database("url" if db_url else database, home, db_url)
        self.settings_path = settings_path
        self.install_requirements = install_requirements

    @classmethod
    def from_state(cls, home: Path, port: int = 8080) -> Runner:
        """The runner as ``start`` last configured it (port and database), for stop/status/logs."""
        try:
            state = json.loads((home / "runner.json").read_text())
        except (OSError, ValueError):
            return cls(home, port)
        return cls(home, state["port"], state["database"], state.get("db_url", ""))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, settings: RunnerSettings | None = None, startup: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTHONPATH"}
        env |= (settings.env if settings else {}) | (startup or {})
        env |= {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dist" / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(min(8, 2 * (os.cpu_count() or 1))),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database.sql_alchemy_conn(),
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
                if _group_alive(pid):
                    alive[component] = pid
        return alive

    def _write_state(self) -> None:
        state = {"port": self.port, "database": self.database.kind, "db_url": self.database.url}
        path = self.home / "runner.json"
        path.write_text(json.dumps(state, indent=2) + "\n")
        path.chmod(0o600)  # a --db-url may carry a password

    def prepare(self) -> tuple[RunnerSettings, dict[str, str]]:
        """MWAA's order before Airflow starts: startup script, requirements, plugins.zip; then the DB."""
        settings = load(self.settings_path, REPO)
        self.home.mkdir(parents=True, exist_ok=True)
        startup = run_startup_script(settings.startup_script) if settings.startup_script else {}
        subprocess.run(
            [str(PYTHON), str(REPO / "mwaa" / "recsys-mwaa"), "package"], check=True, stdout=subprocess.DEVNULL
        )
        if self.install_requirements:
            code = requirements.install(REPO / "dist" / "requirements.txt")
            if code:
                raise SystemExit(f"requirements.txt did not install (pip exit code {code}); Airflow not started")
        plugins = self.home / "plugins"
        shutil.rmtree(plugins, ignore_errors=True)
        with zipfile.ZipFile(REPO / "dist" / "plugins.zip") as zf:
            zf.extractall(plugins)
        self._write_state()  # before the DB starts, so stop finds a cluster a failed start leaves
        self.database.start()
        migrated = subprocess.run(
            [str(PYTHON), "-m", "airflow", "db", "migrate"], env=self.env(settings, startup), capture_output=True,
            text=True,
        )  # fmt: skip
        if migrated.returncode:
            self.database.stop()
            raise SystemExit(f"airflow db migrate failed: {migrated.stderr.strip()[-800:]}")
        return settings, startup

    def start(self, timeout: float = 180) -> dict:
        if self.running():
            raise SystemExit(f"already running: {self.running()} (state in {self.home}); run stop first")
        settings, startup = self.prepare()
        (self.home / "pids").mkdir(exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        env = self.env(settings, startup)
        for component, args in COMPONENTS.items():
            with (self.home / "logs" / f"{component}.log").open("ab") as log:
                process = subprocess.Popen([str(PYTHON), "-m", "airflow", *args], env=env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            self._pid_file(component).write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return {
                    "url": self.url, "user": "admin", "password": self.password(),
                    "database": self.database.describe(), "connections": settings.connections,
                    "variables": settings.variables, "startup_exports": sorted(startup),
                }  # fmt: skip
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
        """End the process groups start recorded (each component and its children) and the runner's own DB."""
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
        if self.database.stop():
            stopped.append("postgres")
        return stopped

    def reset_db(self) -> str:
        if self.running():
            raise SystemExit("stop the runner before reset-db")
        if self.database.reset():
            return f"removed the runner's PostgreSQL cluster in {self.database.cluster}; start creates it anew"
        subprocess.run([str(PYTHON), "-m", "airflow", "db", "reset", "--yes"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        return f"reset {self.database.describe()}"
