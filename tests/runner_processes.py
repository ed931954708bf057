"""What a local runner left running: its recorded process groups, their children, its PostgreSQL."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runner_pids(home: Path) -> list[int]:
    """Every live process of the runner in ``home``: components, their children, its own PostgreSQL."""
    roots = [int(p.read_text()) for p in (home / "pids").glob("*.pid")]
    postmaster = home / "postgres" / "data" / "postmaster.pid"
    if postmaster.exists():
        roots.append(int(postmaster.read_text().split()[0]))
    found = []
    for pid in roots:
        if psutil.pid_exists(pid):
            process = psutil.Process(pid)
            found += [process.pid, *(c.pid for c in process.children(recursive=True))]
    return found


def still_alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def listening_addresses(pids: list[int]) -> set[str]:
    return {
        c.laddr.ip
        for pid in pids
        if psutil.pid_exists(pid)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
