"""Live edits: mirror the repository's dags/ and plugins/ into a running runner, as packaged.

MWAA copies new and changed objects of the bucket's ``dags/`` to its containers about every
30 s, so a DAG edit needs no restart there; the official local runner mounts ``dags/`` and
``plugins/`` for the same reason. This loop (the runner's ``dag-sync`` component) polls the
sources every ``INTERVAL`` seconds and, on a change, packages them exactly as ``recsys-mwaa
package`` does (into the runner's folder, never over dist/) and mirrors the result into the
runner's ``dags/`` and unpacked ``plugins/``: changed files replaced by rename, removed
files removed, so the dag-processor never reads half a file.

What takes effect: DAG files at the dag-processor's next parse; the package's code at the
next task (MWAA's default, kept by the runner, runs every task in a new interpreter). The
AirflowPlugin class itself is read when a component starts, so a change to
``recommender_plugin.py`` needs a restart, as on MWAA a new plugins.zip needs an environment
update. requirements.txt is not reinstalled live (MWAA installs it only on an update): a
change is reported with what to do.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import time
from pathlib import Path

from mwaa_local.package import build_and_unpack
from mwaa_local.paths import REPO

INTERVAL = 2.0  # seconds between polls; MWAA's S3 sync is ~30 s, shorter here for quick edits
SOURCES = ("dags", "plugins", "requirements")


def fingerprint(repo: Path = REPO) -> tuple:
    """(relative path, mtime, size) of every source file the package is built from."""
    found = []
    for folder in SOURCES:
        for path in sorted((repo / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                found.append((str(path.relative_to(repo)), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def mirror(source: Path, target: Path) -> list[str]:
    """Make ``target`` hold exactly ``source``'s files; the relative names it changed, sorted."""
    target.mkdir(parents=True, exist_ok=True)
    wanted, present = _files(source), _files(target)
    changed = []
    for name in sorted(wanted):
        src, dst = source / name, target / name
        if name in present and filecmp.cmp(src, dst, shallow=False):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.sync-tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)  # a reader sees the old file or the new one, never a partial one
        changed.append(name)
    for name in sorted(present - wanted):
        (target / name).unlink()
        changed.append(name)
    return changed


def sync_once(home: Path, repo: Path = REPO) -> dict[str, list[str]]:
    """Package the sources into ``home/sync`` and mirror dags/ and plugins/ into ``home``.

    Returns the changed files of each folder, and under "requirements.txt" a note when the
    packaged requirements.txt differs from the one the runner installed at start.
    """
    unpacked = home / "sync" / "plugins"
    package = build_and_unpack(unpacked, repo, out=home / "sync" / "package")
    changes = {"dags": mirror(package.dags, home / "dags"), "plugins": mirror(unpacked, home / "plugins")}
    installed = home / "requirements.txt"
    if installed.is_file() and installed.read_bytes() != package.requirements.read_bytes():
        changes["requirements.txt"] = ["changed: restart the runner to install it (on MWAA: an environment update)"]
    return changes


def run(home: Path, interval: float = INTERVAL, repo: Path = REPO) -> None:
    """Poll and mirror until stopped (SIGTERM from ``stop``); one log line per change."""
    last: tuple | None = None  # the first pass catches edits made while start was packaging
    print(f"dag-sync: watching {', '.join(SOURCES)} of {repo} every {interval:g} s", flush=True)
    while True:
        now = fingerprint(repo)
        if now == last:
            time.sleep(interval)
            continue
        last = now
        try:
            changes = sync_once(home, repo)
        except Exception as error:  # a broken edit (e.g. a bad constraints file): say it, keep the last good copy
            print(f"dag-sync: not synced: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            continue
        for folder, names in changes.items():
            if names:
                print(f"dag-sync: {folder}: {', '.join(names)}", flush=True)
