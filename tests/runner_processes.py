"""What a local runner left running: its recorded process groups, their children, its PostgreSQL."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "local-runner"))
from mwaa_local.database import free_port

__all__ = ["free_port", "listening_addresses", "runner_pids", "still_alive"]


def runner_pids(home: Path) -> list[int]:
    """Every live process of the runner in ``home``: components, their sessions and children, its PostgreSQL."""
    roots = []
    for record in (home / "pids").glob("*.json"):
        roots.append(json.loads(record.read_text())["pid"])
    postmaster = home / "postgres" / "data" / "postmaster.pid"
    if postmaster.exists():
        roots.append(int(postmaster.read_text().split()[0]))
    found = set()
    for pid in roots:
        if psutil.pid_exists(pid):
            process = psutil.Process(pid)
            found |= {process.pid, *(c.pid for c in process.children(recursive=True))}
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) in roots:
                found.add(process.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return sorted(found)


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
