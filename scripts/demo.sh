#!/usr/bin/env bash
# The demo: sets up ./.venv (first run), starts a simulated fleet of 200 miners (five firmware
# families, a few of them faulty) on 127.77.0.0/22, scans that range and shows the fleet table.
# Runs as a normal user: without the right to bind ports below 1024 the simulator serves 80/443
# at +10000 and the scan is told so. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
workdir=$(mktemp -d)
sim_pid=""
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
    rm -rf "$workdir"
}
trap cleanup EXIT INT TERM
.venv/bin/asicfleet sim --subnet 127.77.0.0/22 --count 200 --seed 1 \
    --faults hung=1,malformed=1,slow=1,reset=1 --slow-seconds 1 --inventory "$workdir/fleet.json" &
sim_pid=$!
for _ in $(seq 1 300); do
    [ -s "$workdir/fleet.json" ] && break
    kill -0 "$sim_pid" 2>/dev/null || { echo "the simulator did not start" >&2; exit 1; }
    sleep 0.1
done
[ -s "$workdir/fleet.json" ] || { echo "the simulator did not come up in 30 s" >&2; exit 1; }
ports=$(.venv/bin/python -c 'import json,sys; f=json.load(open(sys.argv[1])); print(",".join(f"{k}={v}" for k,v in (f[0]["ports"] if f else {}).items()))' "$workdir/fleet.json")
.venv/bin/asicfleet scan 127.77.0.0/22 --ports "$ports" --read-timeout 3 --identify-timeout 4 "$@"
