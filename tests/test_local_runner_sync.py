"""dag-sync: the runner's dags/ and plugins/ follow the checkout's sources, packaged as MWAA gets them."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))

from mwaa_local import sync  # ruff: ignore[module-import-not-at-top-of-file]
from mwaa_local.package import build_and_unpack  # ruff: ignore[module-import-not-at-top-of-file]


def copy_of_checkout(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    for folder in sync.SOURCES:
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return source


def test_mirror_replaces_changed_files_removes_gone_ones_and_leaves_the_rest(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    (source / "pkg").mkdir(parents=True)
    (source / "same.py").write_text("same\n")
    (source / "pkg" / "changed.py").write_text("new\n")
    (source / "pkg" / "added.py").write_text("added\n")
    (target / "pkg").mkdir(parents=True)
    (target / "same.py").write_text("same\n")
    (target / "pkg" / "changed.py").write_text("old\n")
    (target / "gone.py").write_text("gone\n")
    untouched = (target / "same.py").stat().st_ino
    assert sync.mirror(source, target) == ["pkg/added.py", "pkg/changed.py", "gone.py"]
    assert {p.name: p.read_text() for p in target.rglob("*.py")} == {
        "same.py": "same\n", "changed.py": "new\n", "added.py": "added\n",
    }  # fmt: skip
    assert (target / "same.py").stat().st_ino == untouched
    assert not list(target.rglob("*.sync-tmp"))
    assert sync.mirror(source, target) == []


def test_sync_once_mirrors_the_packaged_sources_and_reports_a_requirements_change(tmp_path: Path) -> None:
    source = copy_of_checkout(tmp_path)
    home = tmp_path / "runner"
    package = build_and_unpack(home / "plugins", source)  # what start does
    shutil.copytree(package.dags, home / "dags")
    shutil.copyfile(package.requirements, home / "requirements.txt")
    assert sync.sync_once(home, source) == {"dags": [], "plugins": []}

    (source / "plugins" / "video_recommender" / "live_edit.py").write_text("X = 1\n")
    (source / "dags" / "recommender_workflow.py").write_text("# edited\n")
    (source / "plugins" / "video_recommender" / "console_links.py").unlink()
    (source / "plugins" / "video_recommender" / "__pycache__").mkdir(exist_ok=True)
    (source / "plugins" / "video_recommender" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    with (source / "requirements" / "requirements.txt").open("a") as f:
        f.write("python-slugify\n")
    before = sync.fingerprint(source)
    changes = sync.sync_once(home, source)
    assert changes["dags"] == ["recommender_workflow.py"]
    assert changes["plugins"] == ["video_recommender/live_edit.py", "video_recommender/console_links.py"]
    assert "restart the runner" in changes["requirements.txt"][0]
    assert (home / "dags" / "recommender_workflow.py").read_text() == "# edited\n"
    # Exactly what plugins.zip holds (no __pycache__), and the installed requirements.txt is left as it was.
    zipped = set(zipfile.ZipFile(home / "sync" / "package" / "plugins.zip").namelist())
    assert {str(p.relative_to(home / "plugins")) for p in (home / "plugins").rglob("*") if p.is_file()} == {
        n for n in zipped if not n.endswith("/")
    }
    assert "python-slugify" not in (home / "requirements.txt").read_text()
    assert sync.fingerprint(source) == before  # packaging reads the sources, never writes them
    (source / "dags" / "recommender_workflow.py").write_text("# edited again\n")
    assert sync.fingerprint(source) != before
