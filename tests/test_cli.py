"""The command line end to end: `asicfleet sim` in one process, `asicfleet scan` in another."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from asicfleet.sim import SIM_FAMILIES
from fleet.store import chunk_key
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import EmbeddedRedis
from tests.conftest import lo

ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]
SUBNET = lo("127.77.0.0/22")
SIM_PORTS = "80=10080,443=10443"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    inventory = tmp_path_factory.mktemp("sim") / "fleet.json"
    # the unprivileged user's simulator (ports 80 and 443 at +10000) even when the tests run as root
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", SUBNET, "--count", "200", "--seed", "1",
                                "--ports", SIM_PORTS,
                                "--faults", "hung=1,reset=2,malformed=1,truncated=1,slow=1", "--slow-seconds", "1",
                                "--inventory", str(inventory)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not inventory.exists():
            assert process.poll() is None, f"the simulator died: {process.stderr.read() if process.stderr else ''}"
            assert time.monotonic() < deadline, "the simulator did not write its inventory in 60 s"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=20) == 0, "the simulator did not stop cleanly on SIGTERM"
        finally:
            if process.poll() is None:
                process.kill()


def _ports(inventory: list[dict[str, object]]) -> str:
    ports = inventory[0]["ports"]
    assert isinstance(ports, dict)
    return ",".join(f"{k}={v}" for k, v in ports.items())


def test_scan_json_finds_every_simulated_miner(simulator: list[dict[str, object]]) -> None:
    """Both sides on uvloop in processes of their own, as users run them; a few miners are faulty."""
    result = subprocess.run([*ASICFLEET, "scan", SUBNET, "--json", "--ports", _ports(simulator),
                             "--read-timeout", "3", "--identify-timeout", "5", "--no-progress"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = []
    for line in result.stdout.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as exc:
            pytest.fail(f"not a JSON line ({exc}): {line[max(0, exc.pos - 300): exc.pos + 200]!r}")
    found = {line["ip"]: line for line in lines}
    assert len(simulator) == 200 and set(found) == {m["ip"] for m in simulator}, "missed or invented miners"
    families = set()
    for miner in simulator:
        data = found[miner["ip"]]
        families.add(miner["family"])
        if miner["fault"] not in ("none", "slow"):  # every misbehaving miner is reported, never dropped
            assert data.get("error") or data.get("errors"), (miner["fault"], data)
            continue
        assert "error" not in data, data
        info = data["device_info"]
        assert (info["make"], info["model"], info["firmware"]) == (miner["make"], miner["model"], miner["firmware"])
        hashrate = data["hashrate"]
        assert hashrate["unit"] == "TH/s"
        assert hashrate["value"] == pytest.approx(miner["hashrate_ths"], rel=0.01)
    assert families == set(SIM_FAMILIES)  # the default mix: every family simulated, each read right


def test_scan_table_and_csv(simulator: list[dict[str, object]]) -> None:
    table = subprocess.run([*ASICFLEET, "scan", lo("127.77.0.0/24"), "--ports", _ports(simulator),
                            "--read-timeout", "3", "--identify-timeout", "5"],
                           capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    in_range = [m for m in simulator if str(m["ip"]).startswith(lo("127.77.0."))]
    healthy = [m for m in in_range if m["fault"] in ("none", "slow")]
    assert f"{len(healthy)} miners" in table.stdout
    assert "scanning" in table.stderr  # the progress bar goes to stderr, never into the output
    rows = subprocess.run([*ASICFLEET, "scan", lo("127.77.0.0/24"), "--csv", "--ports", _ports(simulator),
                           "--read-timeout", "3", "--identify-timeout", "5", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert rows.returncode == 0
    assert rows.stdout.splitlines()[0].startswith("ip,make,model")
    assert len(rows.stdout.splitlines()) == 1 + len(in_range)


@pytest.mark.parametrize("args", [["10.0.0.0/33"], ["8.8.8.0/24"], ["banana"], [], ["10.0.0.0/24", "--json", "--csv"],
                                  ["10.0.0.0/24", "--ports", "80"]])
def test_bad_input_is_refused_with_nonzero_exit(args: list[str]) -> None:
    result = subprocess.run([*ASICFLEET, "scan", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "error" in result.stderr.lower() or "usage" in result.stderr.lower()


def test_sim_refuses_bad_options(tmp_path: Path) -> None:
    for args in (["--subnet", "10.0.0.0/24"], ["--mix", "nosuchfirmware"], ["--faults", "melting=2"],
                 ["--subnet", lo("127.95.0.0/30"), "--count", "10"]):
        result = subprocess.run([*ASICFLEET, "sim", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, args


# ----- issue 16: the command line as a new user meets it (80 columns) -----------------------------
NARROW = {**os.environ, "COLUMNS": "80", "TERM": "xterm"}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real command at 80 columns, as a new user's terminal runs it."""
    return subprocess.run([*ASICFLEET, *args], capture_output=True, text=True, timeout=timeout,
                          env={**NARROW, **(env or {})})


def test_a_cidr_with_host_bits_is_refused_with_the_network_address() -> None:
    target = lo("127.96.0.0/8")  # host bits set whatever /16 the run holds: it once scanned all of 127/8
    result = cli("scan", target, "--no-progress")
    assert result.returncode == 2, result.stdout
    assert f"{target} has host bits set; did you mean 127.0.0.0/8?" in " ".join(result.stderr.split())
    assert result.stdout == ""


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """A private Redis and one worker: the environment for the distributed commands."""
    with EmbeddedRedis() as server:
        processes, names = start_workers(server.url, 1, None)
        try:
            wait_for_workers(server.url, names, processes)
            yield {"ASICFLEET_REDIS_URL": server.url}
        finally:
            stop_processes(processes)


@pytest.fixture(scope="module")
def stored_scan(simulator: list[dict[str, object]], cluster: dict[str, str]) -> str:
    """A distributed scan of the simulator's first /24, made with its port map."""
    result = cli("scan", lo("127.77.0.0/24"), "--distributed", "--ports", _ports(simulator), "--json",
                 "--read-timeout", "3", "--identify-timeout", "5", env=cluster)
    assert result.returncode == 0, result.stderr
    scan_id = result.stderr.split("scan ", 1)[1].split()[0]
    # the progress keeps its bar, address count, rate and elapsed time at 80 columns
    _fits(result.stderr)
    assert "━" in result.stderr and "254/254 addresses" in result.stderr, result.stderr
    assert re.search(r"[\d,]+/s · \d:\d\d:\d\d", result.stderr), result.stderr
    return scan_id


def _bitaxes(simulator: list[dict[str, object]]) -> list[str]:
    return [str(m["ip"]) for m in simulator if str(m["ip"]).startswith(lo("127.77.0."))
            and m["family"] == "bitaxe" and m["fault"] in ("none", "slow")]


def test_a_rollout_on_a_scan_id_reaches_its_miners_with_the_scans_port_map(
        simulator: list[dict[str, object]], cluster: dict[str, str], stored_scan: str, tmp_path: Path) -> None:
    """No --ports: the scan's own port map is reused (it once skipped all 20 Bitaxes, 'no miner answers')."""
    config = tmp_path / "pools.yaml"
    config.write_text("pools:\n  - url: stratum+tcp://issue16.pool.example:3333\n    username: w.{ip}\n")
    bitaxes = _bitaxes(simulator)
    assert bitaxes
    dry = cli("apply", str(config), "--target", stored_scan, "--filter", "make=Bitaxe", "--dry-run", env=cluster)
    assert dry.returncode == 0, dry.stderr
    assert "no miner answers" not in dry.stdout + dry.stderr
    assert all(ip in dry.stdout for ip in bitaxes)  # IPs are never cut, even at 80 columns
    _fits(dry.stdout)  # current -> new once wrapped to ~17 lines per miner
    assert len(dry.stdout.splitlines()) <= 1 + 4 * len(bitaxes), dry.stdout
    assert dry.stdout.count("issue16.pool.example") == len(bitaxes)
    run = cli("apply", str(config), "--target", stored_scan, "--filter", "make=Bitaxe", "--verify-timeout", "20",
              env=cluster)
    assert run.returncode == 0, run.stderr
    assert f"{len(bitaxes)} verified" in run.stderr


def test_a_rollout_that_reaches_no_miner_fails_with_a_clear_line(
        cluster: dict[str, str], stored_scan: str, tmp_path: Path) -> None:
    """The issue's run: every target skipped used to end `done (20 skipped)` with exit status 0."""
    config = tmp_path / "pools.yaml"
    config.write_text("pools:\n  - url: stratum+tcp://nowhere.example:3333\n    username: w\n")
    wrong_ports = "80=1,443=2"  # nothing listens there: no miner answers
    for extra in ([], ["--dry-run"]):
        result = cli("apply", str(config), "--target", stored_scan, "--filter", "make=Bitaxe", "--ports",
                     wrong_ports, *extra, env=cluster)
        assert result.returncode == 1, result.stderr
        said = " ".join(result.stderr.split())
        assert "nothing to do: all" in said and "no miner answers at this address" in said
        assert "nothing was sent" in said


def test_a_scan_where_everything_refused_says_so_and_hints_at_the_port_map(
        simulator: list[dict[str, object]]) -> None:
    """The simulator without --ports once gave a bare `0 miners` and exit status 0."""
    result = cli("scan", lo("127.77.0.0/24"), "--no-progress")
    said = " ".join(result.stderr.split())
    assert result.returncode == 0, result.stderr
    assert "0 miners: all 254 addresses refused the connection" in said
    assert "hint: something listens on port 10080 there" in said and "--ports 80=10080,443=10443" in said
    empty = cli("scan", lo("127.97.5.0/28"), "--no-progress")  # nothing at all there: no simulator hint
    said = " ".join(empty.stderr.split())
    assert "0 miners: all 14 addresses refused" in said and "something listens" not in said
    assert "if this is the simulator run without privileges, pass --ports" in said


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("typo.yaml", "pools:\n  - urll: stratum+tcp://a:3333\n    username: w\n",
     "typo.yaml, line 2: pools[0].urll: unknown key 'urll'; did you mean 'url'?"),
    ("secret.yaml", "pools:\n  - url: stratum+tcp://a:3333\n    username: w\n    passwrd: x\n",
     "secret.yaml, line 4: pools[0].passwrd: unknown key 'passwrd'; did you mean 'password'?"),
    ("fan.yaml", "fan:\n  mode: manul\n", "fan.yaml, line 2: fan.mode: should be 'auto' or 'manual' (got 'manul')"),
    ("power.yaml", "power_limit: 32OO\n", "power.yaml, line 1: power_limit: should be a valid number"),
    ("broken.yaml", "pools:\n  - url: [a\n", "broken.yaml, line 3, column 1: not valid YAML"),
    ("typo.json", '{"pools": [{"url": "stratum+tcp://a:3333",\n "usernme": "w"}]}',
     "typo.json, line 2: pools[0].usernme: unknown key 'usernme'; did you mean 'username'?"),
])
def test_config_errors_name_the_users_file_key_and_line(tmp_path: Path, name: str, content: str,
                                                        expected: str) -> None:
    config = tmp_path / name
    config.write_text(content)
    result = cli("apply", str(config), "--target", lo("127.97.0.1"), "--dry-run")
    assert result.returncode == 2
    assert expected in result.stderr, result.stderr
    for internal in ("ControlEnvelope", "control.", "groups", "errors.pydantic.dev", "<unicode string>"):
        assert internal not in result.stderr


def test_a_bad_port_map_names_the_option_not_the_model() -> None:
    for command in (["scan", lo("127.97.0.1")], ["restart", "--target", lo("127.97.0.1"), "--dry-run"]):
        result = cli(*command, "--ports", "80=abc")
        assert result.returncode == 2
        assert "error: --ports: invalid port mapping '80=abc'" in result.stderr, result.stderr
        assert "DiscoveryOptions" not in result.stderr and "pydantic" not in result.stderr


def _fits(text: str, width: int = 80) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, f"lines wider than {width} columns: {too_wide[:3]}"


def _commands() -> list[list[str]]:
    listing = cli("--help").stdout.split("Commands:", 1)[1]
    names = [line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line.split()]
    assert {"scan", "scans", "inventory", "apply", "rollout", "sim"} <= set(names)
    return [[n] for n in names if n != "rollout"] + [["rollout", n] for n in ("status", "resume", "rollback", "list")]


def test_help_fits_80_columns_with_option_names_and_defaults_whole() -> None:
    commands = _commands()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # each is a process of its own: run a few at once
        results = list(pool.map(lambda command: cli(*command, "-h"), commands))
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 0, (command, result.stderr)
        _fits(result.stdout)
        assert "<bool>" not in result.stdout and "<list[str]>" not in result.stdout and "<int" not in result.stdout
        assert "…" not in result.stdout, command
    scan = cli("scan", "--help").stdout
    for option in ("--connect-timeout SECONDS", "--identify-timeout SECONDS", "--max-addresses N",
                   "--allow-public / --no-allow-public", "--local-workers N", "[default: 1000;"):
        assert option in scan


def test_the_fleet_table_fits_80_columns_with_make_and_whole_ips(simulator: list[dict[str, object]]) -> None:
    result = cli("scan", lo("127.77.0.0/24"), "--ports", _ports(simulator), "--read-timeout", "3",
                 "--identify-timeout", "5", "--no-progress")
    assert result.returncode == 0, result.stderr
    _fits(result.stdout)
    healthy = [m for m in simulator if str(m["ip"]).startswith(lo("127.77.0.")) and m["fault"] in ("none", "slow")]
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip().startswith("127.")}
    for miner in healthy:
        assert str(miner["ip"]) in rows, miner["ip"]
    bitaxe = next(m for m in healthy if m["family"] == "bitaxe")
    assert f"Bitaxe {bitaxe['model']}" in rows[str(bitaxe["ip"])]  # the make is shown, not only the chip
    stock = next(m for m in healthy if m["family"] == "antminer" and m["firmware"] == "Stock")
    watts = rows[str(stock["ip"])].split()[-2]
    assert watts.startswith("~") and watts[1:].isdigit(), rows[str(stock["ip"])]  # estimated, and marked so
    assert "estimated from the model's nominal power" in result.stdout
    assert f"{len(healthy)} miners" in result.stdout


def _wait_for_cpu_seconds(process: subprocess.Popen[str], seconds: float, wall_limit: float = 180) -> None:
    """Waits until `process` has had `seconds` of CPU (user + system), as /proc tells."""
    ticks = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + wall_limit
    while True:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / ticks >= seconds:
            return
        assert process.poll() is None and time.monotonic() < deadline, "the scan ended or stalled too early"
        time.sleep(0.1)


def test_ctrl_c_on_an_in_process_scan_prints_the_miners_found_so_far_and_exits_130(
        simulator: list[dict[str, object]]) -> None:
    # four /16s, the simulator's /22 first: after 5 s of the scan's own CPU time (8 s, 12 s in a retry), miners
    # are found and most of the range is still ahead, even on a fast machine (one /16 alone took under 6 s in
    # CI); counted in CPU time, not wall time, so a loaded machine only makes the test slower
    targets = [lo("127.77.0.0/16"), lo("127.172.0.0/16"), lo("127.173.0.0/16"), lo("127.174.0.0/16")]
    found: list[dict[str, object]] = []
    for cpu_seconds in (5.0, 8.0, 12.0):  # a later, longer try where no miner had been read yet
        process = subprocess.Popen([*ASICFLEET, "scan", *targets, "--json", "--ports", _ports(simulator),
                                    "--max-addresses", "262144", "--concurrency", "64", "--read-timeout", "3",
                                    "--identify-timeout", "5"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=NARROW)
        _wait_for_cpu_seconds(process, cpu_seconds)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        found = [json.loads(line) for line in out.splitlines()]
        assert all("ip" in line for line in found), err  # what was found is kept, as JSON lines
        assert "found so far" in err and "the rest of the range was not scanned" in err, err
        assert err.count("scanning") <= 1  # the progress line is not printed twice
        if found:
            break
    assert found, "no try had read a miner before its Ctrl-C"


def _scan_blocked_on_its_output(simulator: list[dict[str, object]]) -> tuple[subprocess.Popen[str], list[str]]:
    """A scan of the simulator's /22 whose JSON (about 2 MB) nobody reads yet: once the scan is over, the
    command sits in a write to the full pipe. Returns the process and its stderr lines so far (read live)."""
    process = subprocess.Popen([*ASICFLEET, "scan", SUBNET, "--json", "--ports", _ports(simulator),
                                "--read-timeout", "3", "--identify-timeout", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=NARROW)
    assert process.stderr is not None
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(iter(process.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 90
    while not any("addresses" in line for line in err_lines):  # the final progress line: the scan is over
        assert process.poll() is None and time.monotonic() < deadline, "".join(err_lines)
        time.sleep(0.1)
    time.sleep(1)  # the first 64 KiB fill the pipe; the rest waits in the write
    assert process.poll() is None, "the output fit the pipe: nothing was left to interrupt"
    return process, err_lines


def test_ctrl_c_while_the_results_are_written_cuts_no_line(simulator: list[dict[str, object]]) -> None:
    process, err_lines = _scan_blocked_on_its_output(simulator)
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    out = process.stdout.read()  # read only now: the whole rest of the output follows
    assert process.wait(timeout=30) == 130
    time.sleep(0.2)
    err = "".join(err_lines)
    lines = out.splitlines()
    assert [json.loads(line)["ip"] for line in lines] == sorted(  # every line whole, every address there
        (str(miner["ip"]) for miner in simulator), key=lambda ip: tuple(int(part) for part in ip.split(".")))
    assert f"all {len(lines)} results were written" in err, err


def test_a_second_ctrl_c_stops_a_blocked_output_at_once(simulator: list[dict[str, object]]) -> None:
    process, err_lines = _scan_blocked_on_its_output(simulator)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # the reader still reads nothing: the first Ctrl-C alone cannot end it
    assert process.wait(timeout=15) == 130
    assert process.stdout is not None
    out = process.stdout.read()
    time.sleep(0.2)
    assert len(out) < 1_000_000  # stopped, not finished: the whole output is about 2 MB
    assert any("stopped: the output was cut short" in line for line in err_lines), err_lines


def _block(listing: str, scan_id: str) -> str:
    """The `key: value` block of one scan in the 80-column `asicfleet scans`."""
    start = listing.index(scan_id)
    rest = listing[start:].splitlines()
    lines = [rest[0]] + [line for line in itertools.takewhile(lambda x: x.startswith("  "), rest[1:])]
    return "\n".join(lines)


def test_no_wait_prints_the_id_and_scans_and_inventory_show_the_truth(
        simulator: list[dict[str, object]], cluster: dict[str, str]) -> None:
    target = lo("127.77.0.0/22")
    started = cli("scan", target, "--distributed", "--ports", _ports(simulator), "--no-wait", "--read-timeout", "3",
                  "--identify-timeout", "5", env=cluster)
    assert started.returncode == 0, started.stderr
    scan_id = started.stdout.strip()
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", scan_id), started.stdout  # stdout: the id alone
    assert f"asicfleet inventory {scan_id}" in started.stderr and "asicfleet scans" in started.stderr
    deadline = time.monotonic() + 180
    while True:
        listing = cli("scans", env=cluster)
        assert listing.returncode == 0, listing.stderr
        block = " ".join(_block(listing.stdout, scan_id).split())
        if "status: done" in block or time.monotonic() > deadline:
            break
        time.sleep(1)
    _fits(listing.stdout)
    assert "status: done" in block and "chunks: 4/4 done" in block, block  # not 'running 4/4' forever
    assert f"targets: {target}" in block and "addresses: 1,022/1,022" in block
    inventory = cli("inventory", scan_id, "--csv", env=cluster)
    assert inventory.returncode == 0 and inventory.stdout.startswith("ip,make,model")
    assert f"scan {scan_id}: done; chunks 4/4 done" in inventory.stderr


def test_a_scan_no_worker_takes_is_shown_waiting_and_a_dead_workers_chunk_is_named(
        cluster: dict[str, str]) -> None:
    """Queued for a site no worker serves; Ctrl-C says the scan goes on; a chunk held by a dead worker shows."""
    process = subprocess.Popen([*ASICFLEET, "scan", lo("127.97.0.0/23"), "--distributed", "--site", "nobodyhome"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**NARROW, **cluster})
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(iter(process.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 120
    while not any("queued on" in line for line in err_lines):  # the scan is queued and being watched
        assert process.poll() is None and time.monotonic() < deadline, "".join(err_lines)
        time.sleep(0.1)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    reader.join(10)
    err = "".join(err_lines)
    assert process.returncode == 130, err
    scan_id = err.split("scan ", 1)[1].split()[0]
    assert f"interrupted: scan {scan_id} goes on in the workers" in " ".join(err.split())
    listing = cli("scans", env=cluster)
    block = " ".join(_block(listing.stdout, scan_id).split())
    assert "status: running" in block and "0/2 done (2 queued)" in block, block
    assert "no live worker holds its queued chunks" in block
    client = redis.Redis.from_url(cluster["ASICFLEET_REDIS_URL"])  # a worker SIGKILLed mid-chunk leaves this
    client.hset(chunk_key(scan_id, 1), mapping={"state": "running", "worker": "ghost@nowhere"})
    block = " ".join(_block(cli("scans", env=cluster).stdout, scan_id).split())
    # the live worker's reaper re-queues a dead worker's chunk (once Redis has been up for a lease and a
    # liveness period, 30 s by default); until it has, `scans` names the chunk and the way out
    if client.hget(chunk_key(scan_id, 1), "state") == b"running":
        assert f"chunk 1 ({lo('127.97.1.0/24')}) is stuck: worker ghost@nowhere stopped while it was running" \
            in block, block
        assert f"asicfleet scan --resume {scan_id}" in block
    deadline = time.monotonic() + 90
    while client.hget(chunk_key(scan_id, 1), "state") != b"queued":
        assert time.monotonic() < deadline, "the reaper never re-queued the dead worker's chunk"
        time.sleep(0.5)
    client.close()
    assert "is stuck" not in " ".join(_block(cli("scans", env=cluster).stdout, scan_id).split())


def test_diff_lists_addresses_in_numeric_order(simulator: list[dict[str, object]], cluster: dict[str, str],
                                               stored_scan: str) -> None:
    wider = cli("scan", lo("127.77.0.0/23"), "--distributed", "--ports", _ports(simulator), "--csv",
                "--no-progress", "--read-timeout", "3", "--identify-timeout", "5", env=cluster)
    assert wider.returncode == 0, wider.stderr
    wider_id = wider.stderr.split("scan ", 1)[1].split()[0]
    result = cli("diff", stored_scan, wider_id, env=cluster)
    assert result.returncode == 0, result.stderr
    appeared = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert len(appeared) > 10
    assert appeared == sorted(appeared, key=lambda ip: tuple(int(p) for p in ip.split(".")))  # .20 before .100
    assert appeared != sorted(appeared), "the range should hold addresses whose text order differs"


def test_small_things_version_format_alias_and_documented_options(simulator: list[dict[str, object]]) -> None:
    version = cli("--version")
    assert version.returncode == 0 and re.fullmatch(r"asicfleet \d+\.\d+\.\d+\S*\n", version.stdout)
    assert "--install-completion" in cli("-h").stdout  # typer's shell completion
    rows = cli("scan", lo("127.77.0.0/24"), "--format", "csv", "--ports", _ports(simulator), "--no-progress",
               "--read-timeout", "3", "--identify-timeout", "5")
    assert rows.returncode == 0 and rows.stdout.startswith("ip,make,model")
    clash = cli("scan", lo("127.97.0.1"), "--format", "table", "--json")
    assert clash.returncode == 2 and "choose one output" in clash.stderr
    inventory_help = " ".join(cli("inventory", "-h").stdout.split())
    assert "--json one MinerData JSON object per line" in inventory_help and "--format table|json|csv" in inventory_help
    firmware_help = " ".join(cli("firmware", "-h").stdout.split())
    for documented in ("--sha256 TEXT the image's SHA-256", "--canary N miners in the first batch",
                       "--verify-timeout SECONDS seconds to wait", "--local-workers N start this many workers"):
        assert documented in firmware_help
    lone = next(str(m["ip"]) for m in simulator if m["fault"] == "none")
    one = cli("scan", lone, "--ports", _ports(simulator), "--no-progress")
    assert one.returncode == 0 and "1 miner\n" in one.stdout.replace(" ", "").replace("1miner", "1 miner"), one.stdout
    assert "1 miners" not in one.stdout


def test_local_workers_bring_their_own_redis(simulator: list[dict[str, object]]) -> None:
    """Without ASICFLEET_REDIS_URL, --local-workers once used whatever answered on 127.0.0.1:6379."""
    env = {k: v for k, v in NARROW.items() if k not in ("ASICFLEET_REDIS_URL", "ASICFLEET_BROKER_URL")}
    result = subprocess.run([*ASICFLEET, "scan", lo("127.77.0.0/25"), "--distributed", "--local-workers", "1",
                             "--ports", _ports(simulator), "--json", "--read-timeout", "3", "--identify-timeout", "5"],
                            capture_output=True, text=True, timeout=300, env=env, cwd="/")
    assert result.returncode == 0, result.stderr
    assert "1 local worker on a private Redis (stopped afterwards)" in result.stderr
    assert result.stdout.count('"ip"') >= 1
