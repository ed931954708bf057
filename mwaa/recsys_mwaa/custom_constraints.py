"""A custom constraints file for MWAA: accepted when it keeps MWAA's essential pins.

MWAA lets requirements.txt name any constraints file; AWS documents this as the way to a
newer Amazon provider: upload an edited copy of the constraints to ``dags/`` and write
``--constraint "/usr/local/airflow/dags/<file>"``. What MWAA does not let a user change is
its *essential* pins: every user install runs as
``pip3 install --constraint "$MWAA_ESSENTIAL_CONSTRAINTS_FILE" -r requirements.txt ...``
(``safe-pip-install``), so a constraints file that pins one of those packages differently
only makes pip fail on MWAA, where the failure is merely logged. We refuse such a file
here, at the line, instead.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

MWAA_DAGS = "/usr/local/airflow/dags"

# Why these and only these: MWAA's image enforces exactly the pins of
# images/airflow/3.3.1/etc/mwaa_essential_constraints.txt (github.com/aws/amazon-mwaa-docker-images,
# commit 0028196; "critical to the functionality of our Airflow image and, thus, do not allow the
# customer to override them"), passed as --constraint on every user install by
# bin/airflow-user/safe-pip-install (see /work/shared/reference/mwaa.md §2). Any other pin of
# the Airflow constraints (the Amazon provider, boto3, s3fs, ...) is the user's to change. Each
# version below equals the pin in requirements/constraints-3.3.1-py3.12.txt, except
# apache-airflow and fluent-logger, which that file does not pin (tests/test_custom_constraints.py).
MWAA_ESSENTIAL_PINS = {
    "apache-airflow": "3.3.1",
    # webserver
    "flask-appbuilder": "5.2.2",
    "flask-babel": "4.0.0",
    "flask-jwt-extended": "4.7.4",
    "flask-limiter": "4.1.1",
    "flask-login": "0.6.3",
    "flask-sqlalchemy": "3.1.1",
    "flask-session": "0.8.0",
    "flask-wtf": "1.3.0",
    "flask": "3.1.3",
    "gunicorn": "26.0.0",
    # celery
    "billiard": "4.2.4",
    "celery": "5.6.3",
    "gevent": "26.7.0",
    "greenlet": "3.5.4",
    "kombu": "5.6.2",
    "vine": "5.1.0",
    # database, metrics, logging
    "sqlalchemy-utils": "0.42.1",
    "sqlalchemy": "2.0.51",
    "statsd": "4.0.1",
    "watchtower": "3.4.0",
    "fluent-logger": "0.11.1",
}

# A constraint line of requirements.txt, commented or not: MWAA's own detection
# (python/mwaa/utils/user_requirements.py) counts commented ones too.
CONSTRAINT_LINE = re.compile(r"^\s*#?\s*(?:-c|--constraint)(?:\s+|=)\"?([^\"\s]+)\"?\s*$")
NESTED_FILE = re.compile(r"^(?:-c|-r|--constraint|--requirement)(?:\s|=)")
COMMENT = re.compile(r"(^|\s+)#.*$")  # as pip strips comments


class ConstraintsError(ValueError):
    """A custom constraints file MWAA would not honour; the message is one line."""


def essential_pin_problems(path: Path) -> list[str]:
    """One line per line of ``path`` that pins an essential package differently from MWAA.

    A file that leaves an essential package unpinned is fine: MWAA adds its own pin anyway.
    """
    problems = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = COMMENT.sub("", raw).strip()
        if not line:
            continue
        if NESTED_FILE.match(line):
            problems.append(
                f"{path}:{number}: {raw.strip()!r} names another file; MWAA requires the essential pins "
                "checkable in this one (inline the pins)"
            )
            continue
        if line.startswith("-"):
            continue  # an option such as --index-url pins nothing
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(f"{path}:{number}: {raw.strip()!r} is not a pin pip can read ({exc})")
            continue
        name = canonicalize_name(requirement.name)
        version = MWAA_ESSENTIAL_PINS.get(name)
        if version is not None and (requirement.url or str(requirement.specifier) != f"=={version}"):
            problems.append(
                f"{path}:{number}: {raw.strip()!r} changes an essential pin; MWAA requires "
                f"{requirement.name}=={version} (mwaa_essential_constraints.txt, enforced over any constraints file)"
            )
    return problems


def check(path: Path) -> None:
    """Raise ConstraintsError (one line, naming the file and line) unless ``path`` keeps MWAA's essentials."""
    if not path.is_file():
        raise ConstraintsError(f"{path}: constraints file not found")
    if path.suffix != ".txt":
        raise ConstraintsError(f"{path}: a constraints file shipped in dags/ must end in .txt (a .py would be parsed)")
    problems = essential_pin_problems(path)
    if problems:
        raise ConstraintsError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


def shipped_name(path: Path) -> str:
    """The file's name in dags/: its stem plus a content hash.

    Why the hash: deploy calls UpdateEnvironment, which makes MWAA reinstall requirements,
    only when requirements.txt or plugins.zip changed. Naming the file by its content makes an
    edit of the constraints change the --constraint line, hence requirements.txt.
    """
    return f"{path.stem}-{digest(path.read_bytes())}.txt"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def local_constraints_file(requirements_text: str, base: Path) -> Path | None:
    """The local file requirements.txt's constraint line names (relative to ``base``), or None for a URL / MWAA path."""
    for line in requirements_text.splitlines():
        match = CONSTRAINT_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*://", target) or target.startswith("/usr/local/airflow/"):
                return None
            return base / target
    return None


def point_requirements_at(requirements_text: str, name: str) -> str:
    """requirements.txt with its constraint lines replaced by one naming dags/``name`` as MWAA sees it."""
    line = f'--constraint "{MWAA_DAGS}/{name}"'
    lines = requirements_text.splitlines()
    positions = [i for i, text in enumerate(lines) if CONSTRAINT_LINE.match(text)]
    kept = [text for i, text in enumerate(lines) if i not in positions]
    kept.insert(positions[0] if positions else 0, line)
    return "\n".join(kept) + "\n"
