"""Writes that survive a crash and fail with the path: fsync, leftovers of killed writers, errors."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from video_recommender import storage
from video_recommender.settings import Settings


def test_the_file_and_its_folder_are_fsynced_before_and_after_the_rename(tmp_path: Path, monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append("fsync dir" if os.path.isdir(target) else "fsync file")
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    storage.write_atomically(tmp_path / "out" / "a.json", b"{}")
    assert events == ["fsync file", "rename", "fsync dir"]
    assert (tmp_path / "out" / "a.json").read_bytes() == b"{}"


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)  # that process has ended


def test_leftovers_of_a_killed_writer_go_on_the_next_write_to_their_folder(tmp_path: Path) -> None:
    folder = tmp_path / "recordio"
    folder.mkdir()
    # What a writer killed between write and rename leaves (the process ended).
    dead = folder / f".train_00000.protobuf.{_dead_pid()}.0123abcd.tmp"
    dead.write_bytes(b"half")
    # A writer of this process still running (another thread): kept.
    live = folder / f".test_00000.protobuf.{os.getpid()}.89abcdef.tmp"
    live.write_bytes(b"in progress")
    # The older layout, without a process id: removed once an hour old, kept while young.
    old, young = folder / ".validate.protobuf.deadbeef.tmp", folder / ".summary.json.feedface.tmp"
    old.write_bytes(b"old")
    young.write_bytes(b"young")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    unrelated = folder / ".keep.tmp"  # not a name we write: never touched
    unrelated.write_bytes(b"x")
    storage.write_atomically(folder / "summary.json", b"{}")
    assert not dead.exists() and not old.exists()
    assert live.exists() and young.exists() and unrelated.exists()
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["summary.json"]


def test_a_failed_write_names_the_path_and_the_reason_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def full(src, dst) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    target = tmp_path / "runs" / "r" / "metrics.json"
    with pytest.raises(storage.StorageError) as caught:
        storage.write_atomically(target, b"{}")
    assert str(caught.value) == f"{target}: cannot write (No space left on device)"
    assert caught.value.errno == errno.ENOSPC
    assert list(target.parent.iterdir()) == []  # no file, no temporary


def test_a_folder_that_is_a_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(storage.StorageError, match=r"/runs/r/run.json: cannot write \(Not a directory\)"):
        storage.write_atomically(tmp_path / "runs" / "r" / "run.json", b"{}")


def test_start_fails_at_once_when_the_storage_root_cannot_be_written(tmp_path: Path) -> None:
    from airflow.exceptions import AirflowException

    from video_recommender import tasks

    blocked = tmp_path / "root"
    blocked.write_text("a file where the root's folder should be")
    settings = Settings(storage_root=blocked.as_uri())
    with pytest.raises(AirflowException) as caught:
        tasks.start(settings, "manual__2026-12-01T10:00:00+00:00")
    message = str(caught.value)
    assert message.startswith(f"cannot start: RECOMMENDER_STORAGE_ROOT={blocked.as_uri()!r} is not writable: ")
    assert "Not a directory" in message
    ok = tasks.start(Settings(storage_root=(tmp_path / "fine").as_uri()), "manual__x")
    assert (tmp_path / "fine" / "runs" / "manual__x" / "run.json").exists() and ok["run_id"] == "manual__x"
