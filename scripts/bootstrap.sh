#!/usr/bin/env bash
# Creates ./.venv (no root needed) and installs asicfleet with the extras given as arguments.
# Re-running is cheap: pip only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "asicfleet needs Python >= 3.11 (found: $("$python" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
# setuptools boxes an "Editable installation" warning on every run for a flat layout; the package folder
# at the root is this project's own, so the warning says nothing here (filtered in the build backend)
PYTHONWARNINGS="ignore:Editable installation" \
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
