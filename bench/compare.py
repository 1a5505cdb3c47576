"""asicfleet against pyasic and pyasic-rs on one simulated fleet: discovery, collection, memory.

One simulator process serves the fleet (bench/_simserver.py: `SimFleet.generate` as `asicfleet sim`
does, plus a control socket for request counts); each client then runs in its own process
(bench/_client.py) on that same fleet:

- discovery: a scan of the whole subnet at one concurrency: addresses/s, miners found, make and model
  of each against the inventory (normalised; raw strings reported where they differ);
- collection: `get_data()` on every miner found at the same concurrency: miners/s, requests and
  connections per miner (counted by the simulator), hash rate and wattage against the inventory (1 %);
- peak RSS of the client's process (ru_maxrss).

A bare asyncio connect loop (open_connection to port 80, close) over the same subnet gives the
machine's limit. Ratios are asicfleet over each peer, >1 = asicfleet better (RSS: peer / asicfleet).

With --silent the whole run happens in a private network namespace where empty addresses do not
answer at all (bench/_netns.py), so each costs a connect timeout (1 s for every client unless
--connect-timeout says otherwise).

Run (as root, so the simulator binds the real ports the peers need):
    .venv/bin/python bench/compare.py [--miners 300] [--subnet 127.N.0.0/16] [--concurrency 1000,2500] \
        [--repeat 1] [--connect-timeout S] [--silent] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asicfleet.sim import claim_loopback
from bench import _netns
from bench._common import (
    PYTHON,
    ROOT,
    SimProcess,
    check_subnet,
    env_for_children,
    host_count,
    judge_figure,
    judge_model,
    norm_make,
    port_map,
    print_total,
    report_header,
)

PEERS = ("pyasic", "pyasic_rs")
DEFAULT_CLIENTS = "asicfleet,pyasic,pyasic_rs,asicfleet@uvloop,bare,bare@uvloop,bare_waitfor,bare_waitfor@uvloop"
ANNOTATIONS = ("auth:",)  # simulator counter keys that annotate a request already counted


# ----- running ------------------------------------------------------------------------------------
def run_client(spec: str, args: argparse.Namespace, sim: SimProcess, workdir: Path) -> dict[str, Any]:
    name, _, loop = spec.partition("@")
    out = workdir / f"{name}-{loop or 'asyncio'}-{time.monotonic_ns()}.json"
    command = [PYTHON, "-m", "bench._client", "--client", name, "--loop", loop or "asyncio", "--subnet",
               args.subnet, "--concurrency", str(args.concurrency), "--inventory", str(sim.inventory_path),
               "--control", sim.control_path, "--out", str(out), "--phase-timeout", str(args.phase_timeout)]
    if args.connect_timeout is not None:
        command += ["--connect-timeout", str(args.connect_timeout)]
    started = time.monotonic()
    try:
        process = subprocess.run(command, cwd=ROOT, env=env_for_children(), timeout=2 * args.phase_timeout + 60,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    except subprocess.TimeoutExpired:
        return {"client": name, "loop": loop or "asyncio", "failed": "the client process ran out of time"}
    if not out.exists():
        tail = process.stderr.decode(errors="replace")[-800:]
        return {"client": name, "loop": loop or "asyncio", "failed": f"exit {process.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(out.read_text())
    result["wall_seconds"] = time.monotonic() - started
    out.unlink()
    return result


# ----- judging ------------------------------------------------------------------------------------
def sim_counts(snapshot: dict[str, Any] | None, inventory: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests (HTTP requests + RPC commands, as the simulator counts them, annotations left out) and
    TCP connections, in all and per family, per miner of the inventory."""
    if not snapshot:
        return {}
    families: defaultdict[str, Counter[str]] = defaultdict(Counter)
    per_family_miners = Counter(m["family"] for m in inventory)
    keys: Counter[str] = Counter()
    for miner in inventory:
        entry = snapshot.get(miner["ip"], {})
        requests = {k: n for k, n in entry.get("requests", {}).items() if not k.startswith(ANNOTATIONS)}
        families[miner["family"]]["requests"] += sum(requests.values())
        families[miner["family"]]["connections"] += sum(entry.get("connections", {}).values())
        keys.update({f"{miner['family']} {k}": n for k, n in requests.items()})
    total_requests = sum(f["requests"] for f in families.values())
    total_connections = sum(f["connections"] for f in families.values())
    n = max(1, len(inventory))
    return {
        "requests_per_miner": total_requests / n,
        "connections_per_miner": total_connections / n if snapshot.get("_connections_counted") else None,
        "per_family": {f: {"requests_per_miner": c["requests"] / per_family_miners[f],
                           "connections_per_miner": c["connections"] / per_family_miners[f]}
                       for f, c in sorted(families.items())},
        "request_keys": dict(sorted(keys.items())),
        "sim_cpu_seconds": snapshot["_cpu"] - snapshot["_cpu_start"] if snapshot.get("_cpu_start") is not None
        else None,
    }


def judge(result: dict[str, Any], inventory: list[dict[str, Any]], addresses: int) -> dict[str, Any]:
    """Rates and correctness of one client run."""
    if "failed" in result and "discovery" not in result:
        return {"client": result["client"], "loop": result.get("loop"), "failed": result["failed"]}
    by_ip = {m["ip"]: m for m in inventory}
    disc = result["discovery"]
    found = {f["ip"]: f for f in disc["found"]}
    is_bare = result["client"].startswith("bare")
    make_status: Counter[str] = Counter()
    model_status: Counter[str] = Counter()
    differences: Counter[str] = Counter()
    for ip, expected in by_ip.items():
        got = found.get(ip)
        if got is None or is_bare:
            continue
        make_ok = norm_make(got["make"]) == norm_make(expected["make"])
        make_status["ok" if make_ok else ("missing" if not got["make"] else "wrong")] += 1
        status = judge_model(expected["model"], got["model"])
        model_status[status] += 1
        if (got["make"], got["model"]) != (expected["make"], expected["model"]):
            make_text = "make ok" if make_ok else "MAKE " + ("missing" if not got["make"] else "WRONG")
            differences[f"{expected['make']} / {expected['model']} -> {got['make'] or '-'} / "
                        f"{got['model'] or '-'} [{make_text}, model {status}]"] += 1
    missing = sorted(set(by_ip) - set(found), key=ipaddress.IPv4Address)
    extra = sorted(set(found) - set(by_ip), key=ipaddress.IPv4Address)
    out: dict[str, Any] = {
        "client": result["client"], "loop": result["loop"], "version": result.get("version"),
        "concurrency": result.get("concurrency"), "peak_rss_mib": result.get("peak_rss_mib"),
        "rss_after_import_mib": result.get("rss_after_import_mib"),
        "discovery": {
            "seconds": disc["seconds"], "addresses": addresses, "addresses_per_s": addresses / disc["seconds"],
            "client_cpu_seconds": disc["cpu_seconds"], "found": len(found), "expected": len(by_ip),
            "missing": missing[:20], "missing_count": len(missing), "extra": extra[:20], "extra_count": len(extra),
            "make": dict(make_status), "model": dict(model_status),
            "raw_differences": dict(differences.most_common()),
            "sim": sim_counts(disc.get("sim"), inventory),
        },
    }
    if "failed" in result:
        out["failed"] = result["failed"]
    coll = result.get("collection")
    if coll:
        reads = coll["reads"]
        hashrate: Counter[str] = Counter()
        wattage: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        wrong_examples: list[str] = []
        for read in reads:
            expected = by_ip.get(read["ip"])
            if expected is None:
                continue
            h = judge_figure(expected["hashrate_ths"], read["hashrate_ths"])
            w = judge_figure(expected["wattage"], read["wattage"], rounding=0.5)
            hashrate[h] += 1
            wattage["not reported" if w == "missing" else w] += 1
            if read.get("error"):
                errors[f"{expected['family']}: {str(read['error'])[:120]}"] += 1
            if (h == "wrong" or w == "wrong") and len(wrong_examples) < 8:
                wrong_examples.append(f"{expected['family']} {expected['model']}: hashrate {read['hashrate_ths']} "
                                      f"(inv {expected['hashrate_ths']}), wattage {read['wattage']} "
                                      f"(inv {expected['wattage']})")
        counts = sim_counts(coll.get("sim"), [by_ip[r["ip"]] for r in reads if r["ip"] in by_ip])
        out["collection"] = {
            "seconds": coll["seconds"], "miners": len(reads),
            "miners_per_s": len(reads) / coll["seconds"] if coll["seconds"] > 0 else None,
            "client_cpu_seconds": coll["cpu_seconds"], "hashrate": dict(hashrate), "wattage": dict(wattage),
            "errors": dict(errors.most_common(10)), "errors_count": sum(errors.values()),
            "wrong_examples": wrong_examples, "sim": counts,
        }
    return out


def flags(entry: dict[str, Any]) -> list[str]:
    """Why a client's rates do not count as a right answer."""
    out: list[str] = []
    if entry.get("failed"):
        out.append("FAILED: " + entry["failed"][:100])
    disc = entry.get("discovery")
    if not disc:
        return out
    if disc["found"] < disc["expected"]:
        out.append(f"found {disc['found']}/{disc['expected']} miners")
    if disc["extra_count"]:
        out.append(f"{disc['extra_count']} non-miners reported")
    if entry["client"].startswith("bare"):
        return out
    bad_make = sum(n for s, n in disc["make"].items() if s != "ok")
    bad_model = sum(n for s, n in disc["model"].items() if s in ("wrong", "missing"))
    if bad_make:
        out.append(f"{bad_make} wrong/missing makes")
    if bad_model:
        out.append(f"{bad_model} wrong/missing models")
    coll = entry.get("collection")
    if coll:
        bad_rate = coll["hashrate"].get("wrong", 0) + coll["hashrate"].get("missing", 0)
        if bad_rate:
            out.append(f"{bad_rate} hash rates wrong/missing")
        if coll["wattage"].get("wrong", 0):
            out.append(f"{coll['wattage']['wrong']} wattages wrong")
        if coll["errors_count"]:
            out.append(f"{coll['errors_count']} reads with errors")
    return out


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One entry for a client: the run with the median discovery rate (its correctness figures), with
    every rate and the peak RSS replaced by the median over the runs; the spread is kept in `runs`."""
    ok = [r for r in runs if r.get("discovery")]
    if not ok:
        return runs[-1]
    ok.sort(key=lambda r: r["discovery"]["addresses_per_s"])
    chosen = json.loads(json.dumps(ok[len(ok) // 2]))  # a copy
    chosen["runs"] = [{"addresses_per_s": r["discovery"]["addresses_per_s"],
                       "miners_per_s": (r.get("collection") or {}).get("miners_per_s"),
                       "peak_rss_mib": r.get("peak_rss_mib"), "flags": flags(r)} for r in runs if r.get("discovery")]
    chosen["discovery"]["addresses_per_s"] = statistics.median(r["discovery"]["addresses_per_s"] for r in ok)
    chosen["discovery"]["seconds"] = statistics.median(r["discovery"]["seconds"] for r in ok)
    chosen["peak_rss_mib"] = statistics.median(r["peak_rss_mib"] for r in ok)
    collected = [r["collection"] for r in ok if r.get("collection")]
    if collected and chosen.get("collection"):
        chosen["collection"]["miners_per_s"] = statistics.median(c["miners_per_s"] for c in collected)
        chosen["collection"]["seconds"] = statistics.median(c["seconds"] for c in collected)
    bad = [f for r in chosen["runs"] for f in r["flags"]]
    if bad and not flags(chosen):
        chosen["other_runs_flags"] = sorted(set(bad))
    return chosen


# ----- printing -----------------------------------------------------------------------------------
def label(entry: dict[str, Any]) -> str:
    return entry["client"] + ("" if entry.get("loop") in (None, "asyncio") else f"@{entry['loop']}")


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def spread(entry: dict[str, Any], key: str) -> str:
    values = [r[key] for r in entry.get("runs", []) if r.get(key) is not None]
    if len(values) < 2:
        return "-"
    return f"{min(values):,.0f}-{max(values):,.0f}"


def table(entries: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def row(title: str, getter: Any) -> None:
        values = []
        for e in entries:
            try:
                values.append(getter(e))
            except (KeyError, TypeError):
                values.append("-")
        rows.append((title, values))

    row("version", lambda e: e.get("version") or "-")
    row("discovery s", lambda e: fmt(e["discovery"]["seconds"], 2))
    row("discovery addr/s", lambda e: fmt(e["discovery"]["addresses_per_s"], 0))
    row("  range over runs", lambda e: spread(e, "addresses_per_s"))
    row("miners found", lambda e: f"{e['discovery']['found']}/{e['discovery']['expected']}")
    row("make ok", lambda e: str(e["discovery"]["make"].get("ok", 0)))
    row("model ok/var/alias", lambda e: "/".join(str(e["discovery"]["model"].get(k, 0))
                                                for k in ("ok", "variant", "alias")))
    row("model wrong/missing", lambda e: "/".join(str(e["discovery"]["model"].get(k, 0))
                                                 for k in ("wrong", "missing")))
    row("disc. requests/miner", lambda e: fmt(e["discovery"]["sim"]["requests_per_miner"], 1))
    row("disc. conns/miner", lambda e: fmt(e["discovery"]["sim"]["connections_per_miner"], 1))
    row("disc. client CPU s", lambda e: fmt(e["discovery"]["client_cpu_seconds"], 1))
    row("collection s", lambda e: fmt(e["collection"]["seconds"], 2))
    row("collection miners/s", lambda e: fmt(e["collection"]["miners_per_s"], 0))
    row("  range over runs", lambda e: spread(e, "miners_per_s"))
    row("coll. requests/miner", lambda e: fmt(e["collection"]["sim"]["requests_per_miner"], 1))
    row("coll. conns/miner", lambda e: fmt(e["collection"]["sim"]["connections_per_miner"], 1))
    row("coll. simulator CPU s", lambda e: fmt(e["collection"]["sim"]["sim_cpu_seconds"], 2))
    row("coll. client CPU s", lambda e: fmt(e["collection"]["client_cpu_seconds"], 2))
    row("hashrate ok/wrong/miss", lambda e: "/".join(str(e["collection"]["hashrate"].get(k, 0))
                                                    for k in ("ok", "wrong", "missing")))
    row("wattage ok/rnd/wrong/n.r.", lambda e: "/".join(str(e["collection"]["wattage"].get(k, 0))
                                                       for k in ("ok", "rounded", "wrong", "not reported")))
    row("reads with errors", lambda e: str(e["collection"]["errors_count"]))
    row("RSS after import MiB", lambda e: fmt(e["rss_after_import_mib"], 1))
    row("peak RSS MiB", lambda e: fmt(e["peak_rss_mib"], 1))
    row("correct?", lambda e: ("yes" if not flags(e) else "NO (see notes)")
        + (" (not every run)" if e.get("other_runs_flags") else ""))
    headers = ["", *[label(e) for e in entries]]
    widths = [max(len(headers[0]), *(len(r[0]) for r in rows))]
    for i in range(len(entries)):
        widths.append(max(len(headers[i + 1]), *(len(r[1][i]) for r in rows)))
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths,
                                                                                           strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for title, values in rows:
        cells = [title.ljust(widths[0]), *(v.rjust(w) for v, w in zip(values, widths[1:], strict=True))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def limit_text(entries: list[dict[str, Any]]) -> str:
    lines = ["the machine's limit (connect to port 80 and close, no identification):"]
    for e in entries:
        disc = e.get("discovery")
        if disc:
            lines.append(f"  {label(e):<20} {disc['addresses_per_s']:>9,.0f} addr/s  ({disc['seconds']:.2f} s, "
                         f"{disc['found']} accepted, client CPU {disc['client_cpu_seconds']:.1f} s, "
                         f"peak RSS {e['peak_rss_mib']:.1f} MiB)")
        else:
            lines.append(f"  {label(e):<20} FAILED {e.get('failed', '')[:200]}")
    return "\n".join(lines)


def ratios(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """asicfleet over each peer (>1: asicfleet better); RSS as peer / asicfleet (>1: asicfleet smaller)."""
    by_label = {label(e): e for e in entries}
    ours = by_label.get("asicfleet")
    out: dict[str, dict[str, Any]] = {}
    if ours is None or "discovery" not in ours:
        return out
    for peer in PEERS:
        theirs = by_label.get(peer)
        if theirs is None or "discovery" not in theirs:
            continue
        entry: dict[str, Any] = {
            "discovery_rate": ours["discovery"]["addresses_per_s"] / theirs["discovery"]["addresses_per_s"],
            "peak_rss": theirs["peak_rss_mib"] / ours["peak_rss_mib"],
            "peer_flags": flags(theirs), "asicfleet_flags": flags(ours),
        }
        if ours.get("collection") and theirs.get("collection"):
            entry["collection_rate"] = ours["collection"]["miners_per_s"] / theirs["collection"]["miners_per_s"]
            entry["collection_requests"] = (theirs["collection"]["sim"]["requests_per_miner"]
                                            / ours["collection"]["sim"]["requests_per_miner"])
            entry["discovery_requests"] = (theirs["discovery"]["sim"]["requests_per_miner"]
                                           / ours["discovery"]["sim"]["requests_per_miner"])
        out[peer] = entry
    for e in entries:
        if not e["client"].startswith("bare") or "discovery" not in e:
            continue
        mine = by_label.get("asicfleet" + ("" if e.get("loop") in (None, "asyncio") else f"@{e['loop']}"))
        if mine and "discovery" in mine:
            out[label(e)] = {"asicfleet_share": mine["discovery"]["addresses_per_s"]
                             / e["discovery"]["addresses_per_s"], "asicfleet": label(mine)}
    return out


def ratio_text(result: dict[str, dict[str, Any]]) -> str:
    lines = ["ratios: asicfleet over peer (>1 = asicfleet better; RSS = peer/asicfleet)"]
    for peer, r in result.items():
        if peer.startswith("bare"):
            lines.append(f"  {r['asicfleet']} discovery rate = {100 * r['asicfleet_share']:.1f} % of {peer}")
            continue
        mark = " (peer NOT correct: " + "; ".join(r["peer_flags"]) + ")" if r["peer_flags"] else ""
        mine = " (asicfleet NOT correct: " + "; ".join(r["asicfleet_flags"]) + ")" if r["asicfleet_flags"] else ""
        parts = [f"discovery {r['discovery_rate']:.2f}x"]
        if "collection_rate" in r:
            parts.append(f"collection {r['collection_rate']:.2f}x")
            parts.append(f"requests/miner disc. {r['discovery_requests']:.2f}x coll. {r['collection_requests']:.2f}x")
        parts.append(f"peak RSS {r['peak_rss']:.2f}x")
        lines.append(f"  vs {peer}: " + ", ".join(parts) + mark + mine)
    return "\n".join(lines)


def notes(entries: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for e in entries:
        name = label(e)
        for flag in flags(e):
            lines.append(f"  {name}: {flag}")
        for flag in e.get("other_runs_flags", []):
            lines.append(f"  {name}: in another run: {flag}")
        disc = e.get("discovery") or {}
        if disc.get("missing"):
            lines.append(f"  {name}: not found: {', '.join(disc['missing'][:8])}"
                         + (" ..." if disc["missing_count"] > 8 else ""))
        for text, n in list((disc.get("raw_differences") or {}).items())[:12]:
            lines.append(f"  {name}: {n}x {text}")
        coll = e.get("collection") or {}
        for text, n in (coll.get("errors") or {}).items():
            lines.append(f"  {name}: {n}x read error {text}")
        for text in coll.get("wrong_examples") or []:
            lines.append(f"  {name}: wrong figure: {text}")
    return "\n".join(lines)


def family_table(entries: list[dict[str, Any]]) -> str:
    """Requests (connections) per miner by family, discovery + collection."""
    with_data = [e for e in entries if e.get("collection")]
    families = sorted({f for e in with_data for f in e["collection"]["sim"].get("per_family", {})})
    lines = ["requests (connections) per miner by family: discovery | collection"]
    for family in families:
        cells = []
        for e in with_data:
            d = e["discovery"]["sim"]["per_family"].get(family, {})
            c = e["collection"]["sim"]["per_family"].get(family, {})
            cells.append(f"{label(e)} {d.get('requests_per_miner', 0):.1f} ({d.get('connections_per_miner', 0):.1f})"
                         f" | {c.get('requests_per_miner', 0):.1f} ({c.get('connections_per_miner', 0):.1f})")
        lines.append(f"  {family:<11} " + ";  ".join(cells))
    return "\n".join(lines)


# ----- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", type=int, default=None, help="default 300 (--silent: 100)")
    parser.add_argument("--subnet", default=None,
                        help="default: a /16 (--silent: a /20) of 127/8 claimed for this run, so runs share a machine")
    parser.add_argument("--concurrency", default="1000,2500",
                        help="comma-separated: every client runs at each (default 1000,2500, the guide's value)")
    parser.add_argument("--clients", default=DEFAULT_CLIENTS,
                        help=f"comma-separated; name@uvloop runs on uvloop (default {DEFAULT_CLIENTS})")
    parser.add_argument("--repeat", type=int, default=1, help="runs per client (the median run is reported)")
    parser.add_argument("--phase-timeout", type=float, default=240.0, help="limit for each client phase, s")
    parser.add_argument("--connect-timeout", type=float, default=None,
                        help="connect timeout for every client, s (default: each client's own; --silent: 1)")
    parser.add_argument("--default-timeouts", action="store_true",
                        help="with --silent: keep each client's own connect timeout instead of 1 s for all")
    parser.add_argument("--silent", action="store_true",
                        help="empty addresses stay silent (a private network namespace; root): timeouts dominate")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    if args.silent and not _netns.inside():
        raise SystemExit(_netns.reexec_inside([str(Path(__file__).resolve()), *sys.argv[1:]]))
    args.miners = args.miners if args.miners is not None else (100 if args.silent else 300)
    claims = contextlib.ExitStack()  # held until the process exits
    args.subnet = args.subnet or claims.enter_context(claim_loopback(20 if args.silent else 16, start=os.getpid()))
    if args.silent and args.connect_timeout is None and not args.default_timeouts:
        args.connect_timeout = 1.0
    network = check_subnet(args.subnet)
    addresses = host_count(network)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    started = time.monotonic()
    concurrencies = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    print(f"compare: {args.miners} simulated miners on {args.subnet} ({addresses} addresses), concurrency "
          f"{', '.join(map(str, concurrencies))}, clients {', '.join(clients)}, {args.repeat} run(s) each, "
          "connect timeout "
          f"{args.connect_timeout if args.connect_timeout is not None else 'each client default'}"
          + (", SILENT empty addresses (private network namespace)" if args.silent else ""), flush=True)
    sim = SimProcess(args.subnet, args.miners)
    if args.silent:
        _netns.setup(args.subnet, _netns.fleet_addresses(args.subnet, args.miners, sim.mix, sim.seed))
    with sim, tempfile.TemporaryDirectory() as tmp:
        inventory = sim.start()
        if port_map(inventory) and os.geteuid() != 0:
            print("the simulator could not bind ports below 1024 (not root): pyasic and pyasic-rs need them; "
                  "they are skipped", flush=True)
            clients = [c for c in clients if c.split("@")[0] not in PEERS]
        reports = []
        found_lines = []
        for concurrency in concurrencies:
            args.concurrency = concurrency
            print(f"concurrency {concurrency}:", flush=True)
            report = measure(args, clients, sim, inventory, addresses, Path(tmp))
            reports.append(report)
            found_lines += [f"  {e['client']:<17} concurrency {concurrency:>6}: found "
                            f"{(e.get('discovery') or {}).get('found', '-')}/{args.miners}"
                            for e in report["clients"] if not e["client"].startswith("bare")]
    print("\nminers found per client and concurrency:\n" + "\n".join(found_lines))
    elapsed = time.monotonic() - started
    print()
    print_total(elapsed)
    if args.json:
        whole = reports[0] if len(reports) == 1 else {"by_concurrency": reports}
        args.json.write_text(json.dumps({**whole, "seconds": elapsed}, indent=1, default=str))
        print(f"wrote {args.json}")


def measure(args: argparse.Namespace, clients: list[str], sim: SimProcess, inventory: list[dict[str, Any]],
            addresses: int, tmp: Path) -> dict[str, Any]:
    """Every client at `args.concurrency`, `args.repeat` times; prints the tables, returns the figures."""
    runs: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for round_ in range(args.repeat):
        for spec in clients:
            result = run_client(spec, args, sim, tmp)
            judged = judge(result, inventory, addresses)
            runs[spec].append(judged)
            disc = judged.get("discovery") or {}
            coll = judged.get("collection") or {}
            print(f"  [{round_ + 1}/{args.repeat}] {spec:<17} discovery "
                  f"{fmt(disc.get('addresses_per_s'), 0):>7} addr/s, found {disc.get('found', '-')}; "
                  f"collection {fmt(coll.get('miners_per_s'), 0):>5} miners/s; "
                  f"peak RSS {fmt(judged.get('peak_rss_mib'), 1)} MiB"
                  + (f"; FAILED {judged['failed'][:200]}" if judged.get("failed") else ""), flush=True)
    if args.json:  # the raw runs first, so a failure below loses nothing
        args.json.with_suffix(f".c{args.concurrency}.runs.json").write_text(json.dumps(runs, indent=1, default=str))
    entries = [median_run(runs[spec]) for spec in clients]
    ratio = ratios(entries)
    clients_only = [e for e in entries if not e["client"].startswith("bare")]
    print()
    print(table(clients_only))
    print()
    print(limit_text([e for e in entries if e["client"].startswith("bare")]))
    print()
    print(ratio_text(ratio))
    print()
    print(family_table(clients_only))
    text = notes(entries)
    if text:
        print("\nnotes:\n" + text)
    return {**report_header(args.subnet, addresses, args.miners, args.concurrency),
            "connect_timeout": args.connect_timeout, "silent": args.silent, "repeat": args.repeat,
            "clients": entries, "ratios": ratio}


if __name__ == "__main__":
    main()
