#!/usr/bin/env bash
# The demo: sets up ./.venv (first run), then `asicfleet demo`: a simulated fleet of 200 miners (five
# firmware families, a few faulty) on a loopback /22 no other run here holds, a private Redis, two Celery workers and Flower,
# a distributed scan with live progress, and the fleet table. Runs as a normal user; everything it
# starts is stopped at the end. Extra arguments go to `asicfleet demo` (e.g. --hold 300 to browse Flower;
# --dashboard: the web dashboard on the fleet, with collection, a degrading miner and the rule that fires).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev,demo
exec .venv/bin/asicfleet demo "$@"
