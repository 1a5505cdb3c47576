#!/usr/bin/env bash
# Sets up ./.venv (first run) and runs the whole test suite: lint, types, the import layers, then pytest
# (the interop tests against pyasic and pyasic-rs included). No root needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "dev,interop,demo"
.venv/bin/ruff check asicfleet fleet orchestrator workers tests bench
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 "$@"  # the slowest tests, to keep the suite short
