"""The runner's metadata database: SQLite by default, PostgreSQL when asked and available.

``postgres`` without a URL runs a private cluster under the runner's folder with the
machine's PostgreSQL binaries (initdb/pg_ctl on PATH or Debian's /usr/lib/postgresql),
listening on 127.0.0.1 only with a generated password; ``stop`` stops it. A URL points at
a server the user runs (the runner neither starts nor stops it).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

POSTGRES_OS_USER = "postgres"  # initdb refuses to run as root; as root the cluster runs as this user


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl (the newest Debian install, else PATH), or None."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if debian:
        return debian[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found and shutil.which("initdb") else None


@dataclass(frozen=True)
class Database:
    kind: str  # "sqlite", "postgres" (the runner's own cluster) or "url" (the user's server)
    home: Path
    url: str = ""

    @property
    def cluster(self) -> Path:
        return self.home / "postgres"

    def describe(self) -> str:
        if self.kind == "sqlite":
            return f"SQLite {self.home / 'airflow.db'}"
        if self.kind == "postgres":
            if not (self.cluster / "ready").exists():
                return f"PostgreSQL (the runner's own cluster in {self.cluster}, not created yet)"
            return f"PostgreSQL (the runner's own cluster in {self.cluster}, 127.0.0.1:{self._port()})"
        return "PostgreSQL at the given URL (started and stopped by you)"

    def sql_alchemy_conn(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.home / 'airflow.db'}"
        if self.kind == "postgres":
            password = quote((self.cluster / "password").read_text().strip(), safe="")
            return f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{self._port()}/airflow"
        return self.url

    def _port(self) -> int:
        return int((self.cluster / "port").read_text())

    def _as_cluster_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        try:
            pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            raise SystemExit(
                f"PostgreSQL refuses to run as root and there is no '{POSTGRES_OS_USER}' user; "
                "run the runner as an ordinary user or use --db-url"
            ) from None
        return ["runuser", "-u", POSTGRES_OS_USER, "--", *args]

    def _cluster_pid(self) -> int | None:
        pid_file = self.cluster / "data" / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> list[int]:
        """The server the runner started, if alive and still that server (not a reused PID)."""
        pid = self._cluster_pid() if self.kind == "postgres" else None
        if pid is None:
            return []
        try:
            process = psutil.Process(pid)
            if str(self.cluster / "data") in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE:
                return [pid]
        except psutil.Error:
            pass
        return []

    def start(self) -> None:
        """Create the cluster on first use and start it (postgres); nothing to do otherwise."""
        if self.kind != "postgres":
            return
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise SystemExit(
                "--db postgres: no PostgreSQL here (no pg_ctl/initdb on PATH or in /usr/lib/postgresql); "
                "install it (Debian: apt-get install postgresql) or pass --db-url of a running server"
            )
        if not (self.cluster / "ready").exists():  # never created, or a creation that failed half-way
            self.stop()
            self._init(bin_dir)
        if not self.pids():
            self._pg_ctl_start(bin_dir)

    def _pg_ctl_start(self, bin_dir: Path) -> None:
        log = self.cluster / "server.log"
        # TCP on 127.0.0.1 only; no Unix socket (its path limit and spaces in --home would bite).
        options = f"-c listen_addresses=127.0.0.1 -p {self._port()} -c unix_socket_directories=''"
        done = subprocess.run(
            self._as_cluster_owner([str(bin_dir / "pg_ctl"), "-D", str(self.cluster / "data"), "-l", str(log),
                                    "-o", options, "-w", "-t", "60", "start"]),
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"PostgreSQL did not start: {done.stderr.strip() or done.stdout.strip()}; see {log}")

    def _init(self, bin_dir: Path) -> None:
        shutil.rmtree(self.cluster, ignore_errors=True)
        self.cluster.mkdir(parents=True)
        password = secrets.token_urlsafe(24)
        (self.cluster / "password").write_text(password + "\n")
        (self.cluster / "password").chmod(0o600)
        (self.cluster / "port").write_text(str(free_port()))
        pwfile = self.cluster / "initdb-password"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(POSTGRES_OS_USER)
            for path in (self.cluster, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            if subprocess.run(self._as_cluster_owner(["test", "-w", str(self.cluster)])).returncode:
                raise SystemExit(
                    f"the '{POSTGRES_OS_USER}' user cannot reach {self.cluster} (a parent folder is closed to it); "
                    "choose a --home it can reach, or run as an ordinary user"
                )
        try:
            done = subprocess.run(
                self._as_cluster_owner([str(bin_dir / "initdb"), "-D", str(self.cluster / "data"), "-U", "airflow",
                                        f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                                        "--locale=C"]),
                capture_output=True, text=True,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode:
            raise SystemExit(f"initdb failed: {done.stderr.strip()[-500:]}")
        # The new cluster has only the 'postgres' database; Airflow gets its own.
        self._pg_ctl_start(bin_dir)
        env = dict(os.environ, PGPASSWORD=password)
        done = subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self._port()), "-U", "airflow", "airflow"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(
                f"createdb airflow failed: {done.stderr.strip()[-500:]}; see {self.cluster / 'server.log'}"
            )
        (self.cluster / "ready").write_text("")

    def stop(self, timeout: float = 30) -> bool:
        """Stop the runner's own cluster (fast, then immediate shutdown); True when it was running."""
        if self.kind != "postgres" or not self.pids():
            return False
        bin_dir = postgres_bin()
        for mode in ("fast", "immediate"):
            if bin_dir is None or not self.pids():
                break
            subprocess.run(
                self._as_cluster_owner([str(bin_dir / "pg_ctl"), "-D", str(self.cluster / "data"), "-m", mode,
                                        "-w", "-t", str(int(timeout)), "stop"]),
                capture_output=True,
            )  # fmt: skip
        for pid in self.pids():  # no pg_ctl, or it failed twice: the verified server process itself
            os.kill(pid, signal.SIGKILL)
        return True

    def reset(self) -> str:
        """Delete the runner's own cluster (stopped first); the next start creates it empty."""
        if self.kind != "postgres":
            raise SystemExit(f"reset: {self.describe()} is not the runner's own cluster")
        self.stop()
        shutil.rmtree(self.cluster, ignore_errors=True)
        if self.cluster.exists():
            raise SystemExit(f"could not delete {self.cluster}; remove it by hand (it may belong to another user)")
        return f"removed the runner's PostgreSQL cluster in {self.cluster}; start creates it anew"
