"""Derive a local constraints file from MWAA's verbatim one for another Python.

MWAA runs Airflow 3.3.1 on Python 3.12 and its constraints file is vendored
unchanged as ``constraints-3.3.1-py3.12.txt``. Where a machine has only Python
3.11, a few pins cannot be met there; this script rewrites exactly those pins
and records each difference (package, MWAA's pin, ours, why) in the output's
header, so the gap to MWAA stays visible and small.

Usage: python requirements/derive_local_constraints.py 3.11 [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MWAA_FILE = HERE / "constraints-3.3.1-py3.12.txt"

# python version -> {package: (replacement version, reason)}
SUBSTITUTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "3.12": {},
    "3.11": {
        "numpy": ("2.4.6", "numpy 2.5.x requires Python >= 3.12; 2.4.6 is the newest release for 3.11"),
    },
}


def local_file(python: str) -> Path:
    return MWAA_FILE if python == "3.12" else HERE / f"constraints-3.3.1-py{python}.txt"


def derive(python: str) -> str:
    if python not in SUBSTITUTIONS:
        raise SystemExit(f"no substitution table for Python {python}; known: {sorted(SUBSTITUTIONS)}")
    subs = SUBSTITUTIONS[python]
    seen: set[str] = set()
    body: list[str] = []
    for line in MWAA_FILE.read_text().splitlines():
        name, sep, _ = line.partition("==")
        key = name.strip().lower()
        if sep and key in subs:
            new_version, _ = subs[key]
            body.append(f"{name}=={new_version}")
            seen.add(key)
        else:
            body.append(line)
    missing = set(subs) - seen
    if missing:
        raise SystemExit(f"{MWAA_FILE.name} has no pin for {sorted(missing)}; update SUBSTITUTIONS")
    header = [
        f"# DERIVED FILE - do not edit. Made by requirements/derive_local_constraints.py {python}",
        f"# from {MWAA_FILE.name} (MWAA's verbatim constraints for Airflow 3.3.1 / Python 3.12).",
        f"# Differences from MWAA's pins on Python {python} ({len(subs)}):",
    ]
    for line in MWAA_FILE.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() in subs:
            new_version, reason = subs[name.strip().lower()]
            header.append(f"#   {name}: MWAA {version} -> {new_version} ({reason})")
    return "\n".join(header + body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python", help="target Python major.minor, e.g. 3.11")
    parser.add_argument("--check", action="store_true", help="fail if the file on disk is out of date")
    args = parser.parse_args(argv)
    target = local_file(args.python)
    if target == MWAA_FILE:
        print(f"Python {args.python}: MWAA's file is used unchanged: {target}")
        return 0
    text = derive(args.python)
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date; run: python {Path(__file__).name} {args.python}", file=sys.stderr)
            return 1
        return 0
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
