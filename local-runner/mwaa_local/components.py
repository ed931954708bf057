"""The four Airflow 3.3.1 components, started and stopped as MWAA's image would run them.

``start`` follows MWAA's order: the startup script (its rules), requirements.txt under
the constraints, then Airflow. The packaged dags/ and plugins.zip are copied into the
runner's folder, plugins.zip unpacked as MWAA does; then the ``dag-sync`` component keeps
them in step with the repository's sources, as MWAA syncs ``dags/`` from S3 (sync.py says
what takes effect live). api-server, scheduler, dag-processor and triggerer run in the
MWAA-exact environment (.venv-mwaa) bound to 127.0.0.1 (the scheduler's and triggerer's
log servers, which listen on every interface, are off). All state lives under one folder.
Each component is its own session; ``stop`` ends exactly those sessions (tasks included)
after checking each recorded PID is still the process it started, and the runner's own
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from mwaa_local.database import Database
from mwaa_local.package import build_and_unpack, mwaa_env, packaging
from mwaa_local.paths import DEFAULT_SETTINGS, LOCAL_RUNNER, PYTHON, REPO
from mwaa_local.settings_file import RunnerSettings, load
from mwaa_local.startup import run_startup_script

AIRFLOW_COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
# dag-sync (sync.py) is the runner's own: it runs in .venv, beside Airflow, with no Airflow settings.
COMPONENTS = [*AIRFLOW_COMPONENTS, "dag-sync"]
# The MWAA container whose startup-script run each component gets (MWAA_AIRFLOW_COMPONENT).
# LocalExecutor runs tasks under the scheduler, so it and its neighbours get the worker's.
MWAA_CONTAINER = {"api-server": "webserver", "scheduler": "worker", "dag-processor": "worker", "triggerer": "worker"}
# /api/v2/monitor/health names for the components that report a heartbeat.
HEALTH_KEYS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
# MWAA's own defaults that a user may override (amazon-mwaa-docker-images 3.3.1,
# python/mwaa/config/airflow.py, "opinionated" config), where they apply without Celery.
MWAA_DEFAULTS = {
    "AIRFLOW__CORE__EXECUTE_TASKS_NEW_PYTHON_INTERPRETER": "True",
    "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "proxy,proxies",
    "AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION": "False",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "1800.0",
}
# Variables of the caller's shell that MWAA would not see; the settings file is the truth.
DROPPED_PREFIXES = ("AIRFLOW", "RECOMMENDER_")


def _session(pid: int) -> list[psutil.Process]:
    """Every live process in the session ``pid`` leads (a component, its workers and tasks)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == pid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


class Runner:
    def __init__(
        self,
        home: Path,
        port: int = 8080,
        database: str = "sqlite",
        db_url: str = "",
        settings_path: Path = DEFAULT_SETTINGS,
        install_requirements: bool = True,
        source: Path = REPO,
    ) -> None:
        self.home = home.resolve()
        self.port = port
        self.database = Database("url" if db_url else database, self.home, db_url)
        self.settings_path = settings_path
        self.install_requirements = install_requirements
        self.source = source.resolve()  # the checkout whose dags/, plugins/ and requirements/ it packages and syncs
        self._started = time.monotonic()  # progress lines count from here, or from start()
        self.python = PYTHON  # Airflow's interpreter: the MWAA-exact environment's once prepare() built it
        self.pythonpath = ""  # the local engine's packages, on the local backend only

    @classmethod
    def from_state(cls, home: Path, port: int = 8080) -> Runner:
        """The runner as ``start`` last configured it (port and database), for stop/status/logs."""
        try:
            state = json.loads((home / "runner.json").read_text())
        except (OSError, ValueError):
            return cls(home, port)
        runner = cls(home, state["port"], state["database"], state.get("db_url", ""))
        runner.python = Path(state.get("python", PYTHON))
        runner.pythonpath = state.get("pythonpath", "")
        return runner

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(
        self, settings: RunnerSettings | None = None, startup: dict[str, str] | None = None, database: bool = True
    ) -> dict[str, str]:
        """MWAA's precedence: shell < MWAA's defaults < startup-script exports < options < the runner's own.

        ``database=False`` leaves out the DB connection (the startup script runs before the DB exists).
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES) and k != "PYTHONPATH"}
        env |= MWAA_DEFAULTS | (startup or {}) | (settings.env if settings else {})
        env |= {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__MULTI_TEAM": "False",
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
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        if database:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.database.sql_alchemy_conn()
        return env

    def _pid_file(self, component: str) -> Path:
        return self.home / "pids" / f"{component}.json"

    def running(self) -> dict[str, int]:
        """Components whose recorded process is alive and is still the one start launched (no reused PID)."""
        alive = {}
        for component in COMPONENTS:
            try:
                record = json.loads(self._pid_file(component).read_text())
                process = psutil.Process(record["pid"])
                if process.create_time() == record["created"] and process.status() != psutil.STATUS_ZOMBIE:
                    alive[component] = record["pid"]
            except (OSError, ValueError, KeyError, TypeError, psutil.Error):
                continue
        return alive

    def _write_json(self, path: Path, data: dict, mode: int = 0o644) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w") as f:
            json.dump(data, f, indent=2)
        tmp.rename(path)

    def _write_state(self) -> None:
        state = {"port": self.port, "database": self.database.kind, "db_url": self.database.url,
                 "python": str(self.python), "pythonpath": self.pythonpath}  # fmt: skip
        self._write_json(self.home / "runner.json", state, mode=0o600)  # a --db-url may carry a password

    def _check_port(self) -> None:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                raise SystemExit(
                    f"127.0.0.1:{self.port} is in use (another Airflow, or the Docker variant?); "
                    "stop it or choose --port"
                ) from None

    def _say(self, message: str) -> None:
        """One progress line as start goes (it takes 20-50 s): which step runs, and how long the last took."""
        now = time.monotonic()
        print(f"[{now - self._started:5.1f} s] {message}", flush=True)

    def _package(self) -> packaging.Package:
        """dags/, plugins (unpacked) and requirements.txt of a fresh package, copied into the runner's folder."""
        package = build_and_unpack(self.home / "plugins", self.source)
        shutil.rmtree(self.home / "dags", ignore_errors=True)
        shutil.copytree(package.dags, self.home / "dags")
        shutil.copyfile(package.requirements, self.home / "requirements.txt")
        return package

    def prepare(self) -> tuple[RunnerSettings, dict[str, dict[str, str]]]:
        """MWAA's order before Airflow starts: startup script, requirements, dags/plugins; then the DB."""
        settings = load(self.settings_path, REPO)
        self.home.mkdir(parents=True, exist_ok=True)
        dropped = sorted(k for k in os.environ if k.startswith("RECOMMENDER_"))
        if dropped:
            print(f"ignored from your shell (MWAA would not see them; use {self.settings_path.name}): "
                  f"{', '.join(dropped)}")  # fmt: skip
        startup: dict[str, dict[str, str]] = {}
        if settings.startup_script:
            self._say(f"startup script {settings.startup_script.name}: running it for each MWAA container")
            base = self.env(settings, database=False)
            runs = {
                c: run_startup_script(settings.startup_script, c, environ=base) for c in set(MWAA_CONTAINER.values())
            }
            startup = {component: runs[container] for component, container in MWAA_CONTAINER.items()}
        self._say("package: building dist/ (dags/, plugins.zip, requirements.txt) and unpacking plugins.zip")
        package = self._package()
        if self.install_requirements:
            # Airflow runs on what MWAA would have: the packaged requirements.txt and the image's
            # packages (.venv-mwaa), not .venv with its test tools. The local engine's packages are
            # added only for the local backend, as a user adds local-engine.txt on MWAA.
            self._say("requirements.txt: MWAA-exact environment .venv-mwaa (built once per requirements.txt)")
            try:
                self.python = mwaa_env.ensure(package, say=self._say)
                if settings.backend == "local":
                    self._say("requirements/local-engine.txt: the local backend's packages (numba, optuna)")
                    self.pythonpath = str(mwaa_env.ensure_local_engine(self.python.parent.parent, say=self._say))
            except mwaa_env.MwaaEnvError as error:
                raise SystemExit(f"requirements.txt did not install: {error}; Airflow not started") from None
        self._write_state()  # before the DB starts, so stop finds a cluster a failed start leaves
        self._say(f"database: starting {self.database.describe()}")
        self.database.start()
        self._say("database: airflow db migrate")
        migrated = subprocess.run(
            [str(self.python), "-m", "airflow", "db", "migrate"], env=self.env(settings), capture_output=True, text=True
        )
        if migrated.returncode:
            self.database.stop()
            raise SystemExit(f"airflow db migrate failed: {migrated.stderr.strip()[-800:]}")
        return settings, startup

    def start(self, timeout: float = 180) -> dict:
        if self.running():
            raise SystemExit(f"already running: {self.running()} (state in {self.home}); run stop first")
        self._check_port()
        self._started = time.monotonic()
        settings, startup = self.prepare()
        (self.home / "pids").mkdir(exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        processes = {}
        for component in COMPONENTS:
            if component in AIRFLOW_COMPONENTS:
                command = [str(self.python), "-m", "airflow", *AIRFLOW_COMPONENTS[component]]
                env = self.env(settings, startup.get(component))
            else:
                command = [str(PYTHON), "-m", "mwaa_local", "sync", "--home", str(self.home)]
                command += ["--source", str(self.source)]
                env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(LOCAL_RUNNER)}
            with (self.home / "logs" / f"{component}.log").open("ab") as log:
                processes[component] = subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            pid = processes[component].pid
            self._say(f"{component}: started, pid {pid}, log {self.home / 'logs' / (component + '.log')}")
            self._write_json(self._pid_file(component), {"pid": pid, "created": psutil.Process(pid).create_time()})
        deadline = time.monotonic() + timeout
        self._say(f"health: waiting for every component at {self.url}/api/v2/monitor/health")
        while time.monotonic() < deadline:
            exited = [c for c, p in processes.items() if p.poll() is not None]
            if exited:
                self.stop()
                raise SystemExit(f"{', '.join(exited)} exited during start-up; see {self.home / 'logs'}")
            if self.healthy(require_all=True):
                self._say("health: all components healthy")
                return {
                    "url": self.url, "user": "admin", "password": self.password(),
                    "database": self.database.describe(), "connections": settings.connections,
                    "variables": settings.variables,
                    "startup_exports": sorted({k for exports in startup.values() for k in exports}),
                }  # fmt: skip
            time.sleep(1)
        self.stop()
        raise SystemExit(f"Airflow did not become healthy within {timeout:.0f} s; see {self.home / 'logs'}")

    def api(self, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
        """One JSON call to this runner's API server; ``path`` follows the host ("auth/token", "api/v2/dags")."""
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/{path}", method=method, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def health(self) -> dict[str, str]:
        """Each component's status as /api/v2/monitor/health reports it; {} when the API does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2) as response:
                report = json.load(response)
            return {key: (report.get(key) or {}).get("status", "unknown") for key in HEALTH_KEYS}
        except (urllib.error.URLError, OSError, ValueError, AttributeError):
            return {}

    def healthy(self, require_all: bool = False) -> bool:
        """The API answers from our api-server with a healthy database (and, if asked, every heartbeat)."""
        if "api-server" not in self.running():
            return False  # something else may answer on the port
        health = self.health()
        keys = HEALTH_KEYS if require_all else ("metadatabase",)
        return bool(health) and all(health[k] == "healthy" for k in keys)

    def password(self) -> str:
        path = self.home / "passwords.json"
        return json.loads(path.read_text()).get("admin", "") if path.exists() else ""

    def stop(self, timeout: float = 30) -> list[str]:
        """End the sessions start recorded (components, their workers and tasks) and the runner's own DB."""
        running = self.running()
        sessions = {component: _session(pid) for component, pid in running.items()}
        for processes in sessions.values():
            for process in processes:
                try:
                    process.send_signal(signal.SIGTERM)
                except psutil.Error:
                    continue
        everyone = [p for processes in sessions.values() for p in processes]
        _, alive = psutil.wait_procs(everyone, timeout=timeout)
        for process in alive:
            try:
                process.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(alive, timeout=5)
        for component in COMPONENTS:
            self._pid_file(component).unlink(missing_ok=True)
        stopped = list(running)
        if self.database.stop():
            stopped.append("postgres")
        return stopped

    def reset_db(self) -> str:
        if self.running():
            raise SystemExit("stop the runner before reset-db")
        if self.database.kind == "url":
            raise SystemExit("reset-db leaves a server you run alone; reset it yourself (airflow db reset)")
        if self.database.kind == "postgres":
            self.database.stop()
            return self.database.reset()
        subprocess.run([str(self.python), "-m", "airflow", "db", "reset", "--yes"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        return f"reset {self.database.describe()}"
