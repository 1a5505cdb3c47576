#!/usr/bin/env bash
# Creates ./.venv (no root needed) and installs asicfleet with the extras given as arguments; as root, also
# the Debian packages some tests need (chromium, chromium-driver, kubernetes-client, prometheus), when missing.
# Re-running is cheap: pip only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "asicfleet needs Python >= 3.11 (found: $("$python" --version 2>&1))" >&2
    exit 1
fi
# Debian packages some tests use, installed as root (CI) when missing; a normal user's run without them skips
# those tests, saying what to install:
#   chromium, chromium-driver  the browser tests (selenium): Flower's pages and the dashboard
#   kubernetes-client          `kubectl kustomize` of the Kubernetes manifests (tests/test_deploy.py; no cluster)
#   prometheus                 a real Prometheus scraping `asicfleet exporter` (tests/test_exporter.py)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
    command -v kubectl >/dev/null || missing+=(kubernetes-client)
    [ -x /usr/bin/prometheus ] || missing+=(prometheus)
    if [ "${#missing[@]}" -gt 0 ]; then
        # not fatal: without them only the tests that need them fail, saying what is missing
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
            echo "bootstrap: could not install ${missing[*]}; the tests that need them will fail" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
# setuptools boxes an "Editable installation" warning on every run for a flat layout; the package folder
# at the root is this project's own, so the warning says nothing here (filtered in the build backend)
PYTHONWARNINGS="ignore:Editable installation" \
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
