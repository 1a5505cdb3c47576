#!/usr/bin/env bash
# Sets up ./.venv (first run) and runs the whole test suite: lint, types, the import layers, then pytest
# (the interop tests against pyasic and pyasic-rs included). No root needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "dev,interop,demo"
.venv/bin/ruff check asicfleet fleet orchestrator workers tests bench
.venv/bin/mypy
.venv/bin/lint-imports
# the tests start many processes of this code (workers, the CLI): bytecode compiled once spares each of them
# compiling it again where PYTHONDONTWRITEBYTECODE is set
.venv/bin/python -m compileall -q -j 0 asicfleet fleet orchestrator workers tests bench >/dev/null
# Two passes: the tests in two processes at once (pytest-xdist, a test file per process: module fixtures such as
# a simulated fleet start once), then the slow ones (scans of /16s at concurrency 10,000, memory peaks) alone,
# so that they measure our own load and not the other tests'. `bash scripts/test.sh tests/test_x.py` runs
# just those, in one pass.
pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15)  # the slowest, to keep the suite short
if [ "$#" -gt 0 ]; then
    exec "${pytest[@]}" "$@"
fi
status=0
"${pytest[@]}" -n "${ASICFLEET_TEST_PROCESSES:-2}" --dist loadfile -m "not slow" || status=$?
"${pytest[@]}" -m slow || status=$?
exit "$status"
