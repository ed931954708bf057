#!/usr/bin/env bash
# Create or reuse .venv with Airflow 3.3.1 installed under MWAA's constraints.
# A second run with unchanged inputs only compares a stamp (well under a second).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
AIRFLOW_VERSION=3.3.1

# MWAA runs Python 3.12: use it where present (PATH or pyenv), else 3.11.
python_ok() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] in ((3, 12), (3, 11)) else 1)' >/dev/null 2>&1; }
pick_python() {
  local candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  candidates+=(python3.12)
  if command -v pyenv >/dev/null 2>&1; then
    for p in "$(pyenv root)"/versions/3.12*/bin/python3.12; do candidates+=("$p"); done
  fi
  candidates+=(/usr/bin/python3.12 python3.11 /usr/bin/python3.11 python3)
  for c in "${candidates[@]}"; do
    if python_ok "$c"; then command -v "$c" 2>/dev/null || echo "$c"; return 0; fi
  done
  echo "error: need Python 3.12 (as MWAA) or 3.11; none found (set PYTHON=/path/to/python3.12)" >&2
  return 1
}

PY=$(pick_python)
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$PYVER" = "3.12" ]; then
  CONSTRAINTS=requirements/constraints-3.3.1-py3.12.txt
else
  "$PY" requirements/derive_local_constraints.py "$PYVER" --check >/dev/null 2>&1 \
    || "$PY" requirements/derive_local_constraints.py "$PYVER"
  CONSTRAINTS=requirements/constraints-3.3.1-py${PYVER}.txt
fi

# Tools whose dependencies clash with Airflow's constraints (checkov) get their own venv.
TOOLS_VENV=${TOOLS_VENV:-.venv-tools}
TOOLS_STAMP=$( { echo "$PY $PYVER"; cat requirements/tools.txt; } | sha256sum | cut -d' ' -f1)
if [ ! -x "$TOOLS_VENV/bin/python" ] || [ "$(cat "$TOOLS_VENV/.bootstrap-stamp" 2>/dev/null)" != "$TOOLS_STAMP" ]; then
  echo "== Installing tools into $TOOLS_VENV"
  rm -rf "$TOOLS_VENV"
  "$PY" -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements/tools.txt
  echo "$TOOLS_STAMP" > "$TOOLS_VENV/.bootstrap-stamp"
fi

STAMP_INPUTS=("$CONSTRAINTS" requirements/requirements.txt requirements/local.txt requirements/local-engine.txt requirements/dev.txt "$0")
STAMP=$( { echo "$PY $PYVER $AIRFLOW_VERSION"; cat "${STAMP_INPUTS[@]}"; } | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.bootstrap-stamp" 2>/dev/null)" = "$STAMP" ]; then
  exit 0
fi

echo "== Installing Airflow $AIRFLOW_VERSION on Python $PYVER into $VENV (constraints: $CONSTRAINTS)"
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$PYVER" ]; then
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"

# requirements.txt is exactly what MWAA installs; locally its constraints URL is
# swapped for the vendored copy so the install works offline from PyPI alone.
LOCAL_REQ=$(mktemp)
trap 'rm -f "$LOCAL_REQ"' EXIT
sed -E "s|^--constraint .*|--constraint $PWD/$CONSTRAINTS|" requirements/requirements.txt > "$LOCAL_REQ"

"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "apache-airflow==$AIRFLOW_VERSION" \
  -r "$LOCAL_REQ" -r requirements/local.txt -r requirements/dev.txt \
  --constraint "$CONSTRAINTS"
"$VENV/bin/python" -m pip check
echo "$STAMP" > "$VENV/.bootstrap-stamp"
echo "== $VENV ready"
