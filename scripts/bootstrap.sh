#!/usr/bin/env bash
# Creates ./.venv (no root needed) and installs asicfleet with the extras given as arguments; as root, also
# Debian's chromium and chromium-driver for the browser tests, and prometheus for the exporter's, when missing.
# Re-running is cheap: pip only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "asicfleet needs Python >= 3.11 (found: $("$python" --version 2>&1))" >&2
    exit 1
fi
# The browser tests drive Debian's chromium through chromium-driver (selenium). As root (CI) install them
# when missing; a normal user without them gets the browser test's failure saying what to install.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
    # not fatal: without them only the browser tests fail, saying what is missing
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } ||
        echo "bootstrap: could not install chromium and chromium-driver; the browser tests will fail" >&2
fi
# The exporter's test has a real Prometheus scrape it (Debian's prometheus); as root (CI) install it when missing,
# a normal user without it gets that test skipped with the reason.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -x /usr/bin/prometheus ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; } ||
        echo "bootstrap: could not install prometheus; the exporter's scrape test will be skipped" >&2
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
# setuptools boxes an "Editable installation" warning on every run for a flat layout; the package folder
# at the root is this project's own, so the warning says nothing here (filtered in the build backend)
PYTHONWARNINGS="ignore:Editable installation" \
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
