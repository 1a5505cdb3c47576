"""Flower as an operator sees it, with real parts: a private redis-server, two Celery workers of site east, a
simulated fleet of 150 miners over a loopback /20 (scanned as 16 chunks), `asicfleet flower` in its own
process, and a headless Chromium for the tasks page. Also: Flower's login against passwords with commas and
colons (issue 9), and its worker-control endpoints refused unless --allow-control."""

from __future__ import annotations

import ast
import base64
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from asicfleet.sim import Fault, SimFleet
from fleet.controls import FaultLightControl
from fleet.ledger import MinerStep, RolloutStatus
from fleet.loop import run_async
from fleet.messaging import REAP
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, site_queue
from fleet.store import chunk_key
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import free_port
from orchestrator.rollouts import Rollouts
from orchestrator.targeting import plan_rollout
from orchestrator.watch import Orchestrator
from tests.browser import require_chromium
from tests.conftest import ThreadedFleet, lo

SUBNET = lo("127.147.0.0/20")
SITE = "east"
USER = "ops"
PASSWORD = "Str0ng,pa:ss,"  # a comma (Flower's list separator) and a colon (basic auth's separator)
LIVENESS = "3"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def fleet() -> Iterator[SimFleet]:
    sim = SimFleet.generate(SUBNET, 150, ["antminer", "braiins", "whatsminer", "avalon", "bitaxe"], seed=11)
    with ThreadedFleet(sim) as served:
        yield served


def _options(fleet: SimFleet) -> DiscoveryOptions:
    assert fleet.ports is not None
    return DiscoveryOptions(ports=str(fleet.ports), concurrency=500, connect_timeout=0.5, read_timeout=2.0,
                            identify_timeout=4.0)


def _settings(redis_url: str) -> FleetSettings:
    return FleetSettings(redis_url=redis_url, worker_liveness_seconds=float(LIVENESS))


def _basic(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


class Flower:
    """`asicfleet flower` in its own process, in `workdir` (which may hold a hostile flowerconfig.py)."""

    def __init__(self, redis_url: str, workdir: Path, *args: str, password: str = PASSWORD,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"flower-{self.port}.log"
        full_env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url, "ASICFLEET_FLOWER_USER": USER,
                    "ASICFLEET_FLOWER_PASSWORD": password, "XDG_DATA_HOME": str(workdir / "data"), **(env or {})}
        full_env.pop("ASICFLEET_BROKER_URL", None)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "flower", "--port",
                                             str(self.port), *args], env=full_env, cwd=workdir, stdout=out,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/healthcheck", timeout=2)
                break
            except httpx.TransportError:
                assert self.process.poll() is None, f"Flower exited at start: {self.log.read_text()}"
                assert time.monotonic() < deadline, "Flower did not start"
                time.sleep(0.2)

    def get(self, path: str, **params: Any) -> Any:
        reply = httpx.get(f"{self.url}{path}", params=params, auth=(USER, PASSWORD), timeout=10)
        assert reply.status_code == 200, (path, reply.status_code, reply.text)
        return reply.json()

    def tasks(self) -> dict[str, dict[str, Any]]:
        tasks: dict[str, dict[str, Any]] = self.get("/api/tasks")
        return tasks

    def stop(self) -> None:
        stop_processes([self.process])


def _wait_until_subscribed(flower: Flower, redis_url: str) -> None:
    """Flower only sees events sent after its event consumer subscribed: send a harmless task (the reaper, to
    the workers' queue) until Flower has seen one."""
    app = Orchestrator(_settings(redis_url)).app
    deadline = time.monotonic() + 60
    while True:
        probe = app.send_task(REAP, queue=site_queue(SITE)).id
        for _ in range(10):
            if probe in flower.tasks():
                return
            time.sleep(0.2)
        assert time.monotonic() < deadline, "Flower never saw a task event"


def _workers_shown(flower: Flower, count: int) -> list[str]:
    """The workers Flower lists, once it lists `count` (it asks them over the broker, with a timeout)."""
    deadline = time.monotonic() + 60
    while len(shown := sorted(flower.get("/api/workers", refresh=1))) < count:
        assert time.monotonic() < deadline, f"Flower lists {shown}"
        time.sleep(0.5)
    return shown


def _wait_for(flower: Flower, match: str, count: int, timeout: float = 60) -> dict[str, dict[str, Any]]:
    """The tasks whose kwargs mention `match`, once `count` of them have ended (events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = {uuid: t for uuid, t in flower.tasks().items() if match in str(t.get("kwargs"))}
        ended = [t for t in tasks.values() if t.get("state") in ("SUCCESS", "WARNING", "FAILURE")]
        if len(ended) >= count:
            return tasks
        assert time.monotonic() < deadline, f"only {len(ended)} of {count} tasks ended in Flower: {tasks}"
        time.sleep(0.3)


@dataclass
class Run:
    flower: Flower
    workdir: Path
    scan_id: str
    faulty_chunk: int
    faulty_ips: list[str]
    rollout_id: str
    failing_batch: int
    refusing: str
    batches: list[list[str]]
    workers: list[str]


@pytest.fixture(scope="module")
def run(redis_url: str, fleet: SimFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One real scan (16 chunks, two broken hosts in one of them) and one real fault-light rollout of 58 miners
    (one of them refusing logins), with Flower up and watching."""
    workdir = tmp_path_factory.mktemp("flower")
    # a local config that would open Flower without login, and environment that would do the same
    (workdir / "flowerconfig.py").write_text("basic_auth = []\nread_only = False\n")
    flower = Flower(redis_url, workdir, "--db", str(workdir / "history" / "flower.db"),
                    env={"FLOWER_UNAUTHENTICATED_API": "true", "FLOWER_BASIC_AUTH": ""})
    processes, names = start_workers(redis_url, 2, SITE, extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
    done: Run | None = None
    try:
        wait_for_workers(redis_url, names, processes)
        _wait_until_subscribed(flower, redis_url)

        # two hosts of one /24 answer badly: one with malformed JSON, one resetting every connection
        by_chunk: dict[int, list[str]] = {}
        for ip in fleet.miners:
            by_chunk.setdefault(int(ipaddress.IPv4Address(ip)) >> 8 & 0xF, []).append(ip)
        faulty_chunk = max(by_chunk, key=lambda n: len(by_chunk[n]))
        faulty_ips = sorted(by_chunk[faulty_chunk])[:2]
        fleet.miners[faulty_ips[0]].fault = Fault.MALFORMED
        fleet.miners[faulty_ips[1]].fault = Fault.RESET
        orchestrator = Orchestrator(_settings(redis_url))
        scan_id = orchestrator.start_scan([SUBNET], site=SITE, options=_options(fleet))
        final = orchestrator.watch(scan_id, timeout=300)
        assert final.finished and final.chunks_total == 16 and final.chunks_failed == 0
        for ip in faulty_ips:
            fleet.miners[ip].fault = Fault.NONE

        # 58 miners that can show their fault light: a canary of 8, then five batches of 10
        inventory = orchestrator.inventory(scan_id)
        control = FaultLightControl(on=True)
        batching: dict[str, Any] = {"batch_size": 10, "canary": 8, "pause_seconds": 0.0, "max_fail": 0.5,
                                    "verify_timeout": 8.0, "site": SITE}
        probe = run_async(plan_rollout(control, inventory, options=_options(fleet), **batching))
        capable = {m.ip for m in probe.miners if m.skip_reason is None}
        chosen = [m for m in inventory if str(m.ip) in capable][:58]
        assert len(chosen) == 58, f"only {len(capable)} miners can do the fault light"
        plan = run_async(plan_rollout(control, chosen, options=_options(fleet), **batching))
        batches = plan.batches()
        assert [len(b) for b in batches] == [8, 10, 10, 10, 10, 10]
        failing_batch = 2
        refusing = next(ip for ip in batches[failing_batch] if fleet.miners[ip].family in ("antminer", "whatsminer"))
        fleet.miners[refusing].fault = Fault.AUTH_FAILURE
        rollouts = Rollouts(_settings(redis_url))
        rollout_id = rollouts.create(plan)
        progress = rollouts.run(rollout_id, timeout=300)
        fleet.miners[refusing].fault = Fault.NONE
        assert progress.status is RolloutStatus.DONE and progress.counts[MinerStep.FAILED] == 1, progress
        worker_names = _workers_shown(flower, len(names))
        done = Run(flower, workdir, scan_id, faulty_chunk, faulty_ips, rollout_id, failing_batch, refusing,
                   batches, worker_names)
        yield done
    finally:
        stop_processes(processes)
        (done.flower if done is not None else flower).stop()  # the history test restarts Flower


def test_chunk_tasks_are_named_for_the_operator_and_carry_their_counts(run: Run, redis_url: str) -> None:
    tasks = _wait_for(run.flower, run.scan_id, 16)
    chunks = {ast.literal_eval(t["kwargs"])["chunk"]: t for t in tasks.values()}
    assert sorted(chunks) == list(range(16))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    base = int(ipaddress.IPv4Network(SUBNET).network_address)
    for index, task in chunks.items():
        cidr = f"{ipaddress.IPv4Address(base + index * 256)}/24"
        assert task["name"] == f"scan {run.scan_id} chunk {index}/16 {cidr} site east"
        kwargs = ast.literal_eval(task["kwargs"])
        assert kwargs["label"] == cidr and kwargs["site"] == SITE and "options" not in kwargs  # no blob
        result = ast.literal_eval(task["result"])
        stored = client.hgetall(chunk_key(run.scan_id, index))
        for field in ("probed", "found", "errors", "undecided"):
            assert result[field] == int(stored[field]), (index, field, result, stored)
        assert result["probed"] == int(stored["addresses"]) and result["undecided"] == 0
        assert result["identify_seconds"] > 0 and result["collect_seconds"] >= 0
        if index == run.faulty_chunk:
            assert result["errors"] == 2 and result["outcome"] == "warning", result
            assert task["state"] == "WARNING"
            assert result["summary"].startswith(f"errors 2, undecided 0, found {result['found']}, probed "
                                                f"{result['probed']}; identify ")
        else:
            assert result["errors"] == 0 and result["outcome"] == "ok", result
            assert task["state"] == "SUCCESS"
        assert result["found"] == int(stored["found"]) > 0
    found = sum(ast.literal_eval(t["result"])["found"] for t in chunks.values())
    assert found == 150 - 2  # every miner but the two broken hosts
    # how README tells an operator to find a scan's tasks, and what went partly wrong
    for query in (run.scan_id, f"kwargs:scan_id={run.scan_id}"):
        assert set(run.flower.get("/api/tasks", search=query)) == set(tasks), query
    faulty_uuid = next(uuid for uuid, t in tasks.items() if t is chunks[run.faulty_chunk])
    assert faulty_uuid in run.flower.get("/api/tasks", search="state:WARNING")


def test_rollout_batches_are_named_with_their_control_and_show_verified_and_failed(run: Run, redis_url: str) -> None:
    tasks = _wait_for(run.flower, run.rollout_id, 6)
    batches = {ast.literal_eval(t["kwargs"])["batch"]: t for t in tasks.values()}
    assert sorted(batches) == list(range(6))
    ledger = Rollouts(_settings(redis_url)).ledger
    outcomes: list[str] = []
    for index, task in batches.items():
        size = len(run.batches[index])
        assert task["name"] == f"rollout {run.rollout_id} fault light on batch {index}/6 ({size} miners)"
        result = ast.literal_eval(task["result"])
        entries = ledger.miners(run.rollout_id, run.batches[index])
        states = [e["state"] for e in entries.values()]
        details = {ip: (e["state"], e.get("make"), e.get("model"), e.get("detail")) for ip, e in entries.items()
                   if e["state"] != MinerStep.VERIFIED}
        assert result["control"] == "fault light on" and result["miners"] == size
        for step in ("verified", "failed", "unverified", "skipped"):
            assert result[step] == states.count(step), (index, step, result, states)
        # a failed miner, or one whose change could not be read back, makes the batch a warning; Bitaxes are
        # in the mix: some AxeOS versions have no identify endpoint (skipped), others do not report the light
        trouble = result["failed"] + result["unverified"]
        assert result["outcome"] == ("warning" if trouble else "ok"), details
        assert task["state"] == ("WARNING" if trouble else "SUCCESS"), details
        assert result["summary"] == (f"failed {result['failed']}, unverified {result['unverified']}, verified "
                                     f"{result['verified']}, skipped {result['skipped']}; {size} miners, "
                                     "fault light on")
        if index == run.failing_batch:
            assert result["failed"] == 1 and entries[run.refusing]["state"] == MinerStep.FAILED, details
        else:
            assert result["failed"] == 0, details
        outcomes.append(task["state"])
    assert "SUCCESS" in outcomes and outcomes.count("WARNING") >= 1
    for query in (run.rollout_id, f"kwargs:rollout_id={run.rollout_id}"):
        assert set(run.flower.get("/api/tasks", search=query)) == set(tasks), query


def test_a_queued_chunk_is_named_before_any_worker_takes_it(run: Run, redis_url: str) -> None:
    """Flower learns of a queued task from the sender's task-sent event: it names the chunk too."""
    scan_id = Orchestrator(_settings(redis_url)).start_scan([lo("127.147.200.0/30")], site="west")  # no west worker
    deadline = time.monotonic() + 30
    while not (queued := [t for t in run.flower.tasks().values() if scan_id in str(t.get("kwargs"))]):
        assert time.monotonic() < deadline, "Flower never listed the queued chunk"
        time.sleep(0.3)
    assert queued[0]["state"] == "PENDING"
    assert queued[0]["name"] == f"scan {scan_id} chunk 0/1 {ast.literal_eval(queued[0]['kwargs'])['label']} site west"


def test_flower_is_read_only_and_ignores_local_overrides(run: Run) -> None:
    flower = run.flower
    log = flower.log.read_text()
    assert "ignored: ./flowerconfig.py" in log and "FLOWER_UNAUTHENTICATED_API" in log, log
    assert httpx.get(f"{flower.url}/api/workers", timeout=5).status_code == 401  # the local config opened nothing
    assert httpx.get(f"{flower.url}/metrics", timeout=5).status_code == 401
    metrics = httpx.get(f"{flower.url}/metrics", auth=(USER, PASSWORD), timeout=5).text
    # counted by task type: a series per chunk or batch would grow without bound
    assert 'task="asicfleet.scan_chunk"' in metrics and 'task="asicfleet.apply_batch"' in metrics
    assert run.scan_id not in metrics and run.rollout_id not in metrics
    assert httpx.get(f"{flower.url}/healthcheck", timeout=5).text == "OK"  # a probe, documented as open
    worker = run.workers[0]
    for path in (f"/api/worker/pool/shrink/{worker}", f"/api/worker/pool/restart/{worker}",
                 f"/api/worker/shutdown/{worker}", f"/api/worker/queue/cancel-consumer/{worker}",
                 f"/api/task/async-apply/{REAP}", f"/api/task/send-task/{REAP}",
                 "/api/task/revoke/" + next(iter(flower.tasks()))):
        reply = httpx.post(f"{flower.url}{path}", auth=(USER, PASSWORD), json={}, timeout=5)
        assert reply.status_code == 403, (path, reply.status_code, reply.text)
    time.sleep(1)  # a shutdown, had one been sent, would take the worker off within this
    assert _workers_shown(flower, len(run.workers)) == run.workers  # nobody was shut down


def test_tasks_page_in_a_real_browser_shows_chunks_by_cidr_and_warnings(run: Run) -> None:
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _wait_for(run.flower, run.scan_id, 16)
    base = int(ipaddress.IPv4Network(SUBNET).network_address)
    faulty_cidr = f"{ipaddress.IPv4Address(base + run.faulty_chunk * 256)}/24"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1600,1000", f"--user-data-dir={run.workdir / 'chromium'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": _basic(f"{USER}:{PASSWORD}")})
        driver.get(f"{run.flower.url}/tasks?state=WARNING")  # Flower's own filter link for one state

        def rows(_: object) -> list[str]:
            texts = [str(r.get_attribute("textContent")) for r in
                     driver.find_elements(By.CSS_SELECTOR, "#tasks-table tbody tr")]
            return [text for text in texts if "WARNING" in text]

        shown: list[str] = WebDriverWait(driver, 30).until(lambda d: rows(d) if len(rows(d)) >= 2 else [])
        chunk_row = next(r for r in shown if faulty_cidr in r)
        assert f"scan {run.scan_id} chunk {run.faulty_chunk}/16 {faulty_cidr} site east" in chunk_row
        assert "errors 2, undecided 0, found " in chunk_row  # the result column shows the summary, not the dict
        assert any(f"rollout {run.rollout_id} fault light on batch {run.failing_batch}/6" in r and "failed 1, " in r
                   for r in shown), shown
        driver.save_screenshot(str(run.workdir / "tasks-warning.png"))  # for a person looking at a failed run
        columns = [h.get_attribute("data-column")
                   for h in driver.find_elements(By.CSS_SELECTOR, "#tasks-table thead th")]
        assert columns == ["name", "state", "result", "received", "runtime", "worker", "uuid"], columns
    finally:
        driver.quit()


def test_the_task_history_survives_a_restart_of_flower(run: Run, redis_url: str) -> None:
    _wait_for(run.flower, run.rollout_id, 6)
    run.flower.process.send_signal(signal.SIGTERM)
    assert run.flower.process.wait(timeout=30) == 0
    run.flower = Flower(redis_url, run.workdir, "--db", str(run.workdir / "history" / "flower.db"))
    tasks = run.flower.tasks()
    names = {t["name"] for t in tasks.values()}
    assert sum(name.startswith(f"scan {run.scan_id} chunk ") for name in names) == 16
    assert sum(name.startswith(f"rollout {run.rollout_id} ") for name in names) == 6
    assert [t["state"] for t in tasks.values()].count("WARNING") >= 2


# ----- login (issue 9): passwords with commas and colons -------------------------------------------
@pytest.mark.parametrize("password", ["Str0ngpass,", "Str0ng,pass", "pa:ss,wo:rd", ",,", "x:"])
def test_login_refuses_empty_partial_and_malformed_credentials(redis_url: str, tmp_path: Path, password: str) -> None:
    (tmp_path / "flowerconfig.py").write_text("basic_auth = []\n")
    flower = Flower(redis_url, tmp_path, "--no-persistent", password=password, env={"FLOWER_BASIC_AUTH": ""})
    try:
        pieces = {p for p in password.replace(":", ",").split(",")} | {""}
        bad: list[dict[str, str]] = [
            {}, {"Authorization": ""}, {"Authorization": "Basic"}, {"Authorization": "Basic ===="},
            {"Authorization": "Basic !!!!"},
            {"Authorization": "Bearer " + _basic(f"{USER}:{password}")["Authorization"].removeprefix("Basic ")},
            {"Authorization": _basic(f"{USER}:{password}")["Authorization"] + " extra"},
            {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:" + password.encode()).decode()},
            _basic(":"), _basic(USER), _basic(f"{USER}:"), _basic(f":{password}"), _basic(password),
            _basic(f"{USER}:{password} "), _basic(f"{USER.upper()}:{password}"),
            *(_basic(f"{USER}:{piece}") for piece in pieces),
            *(_basic(piece) for piece in pieces if piece),  # "Basic ====" is the empty one
        ]
        for headers in bad:
            for path in ("/api/workers", "/tasks", "/metrics", "/api/tasks"):
                reply = httpx.get(f"{flower.url}{path}", headers=headers, timeout=5)
                assert reply.status_code == 401, (password, headers, path, reply.status_code)
            reply = httpx.post(f"{flower.url}/api/task/async-apply/{REAP}", headers=headers, json={}, timeout=5)
            assert reply.status_code == 401, (password, headers, reply.status_code)
        good = _basic(f"{USER}:{password}")
        assert httpx.get(f"{flower.url}/api/workers", headers=good, timeout=5).status_code == 200
        assert httpx.post(f"{flower.url}/api/task/async-apply/{REAP}", headers=good, json={},
                          timeout=5).status_code == 403  # logged in, and still read-only
    finally:
        flower.stop()


def test_allow_control_lets_logged_in_users_reach_worker_control(redis_url: str, tmp_path: Path) -> None:
    flower = Flower(redis_url, tmp_path, "--no-persistent", "--allow-control")
    try:
        assert "worker control ALLOWED" in flower.log.read_text()
        anonymous = httpx.post(f"{flower.url}/api/worker/shutdown/nobody@nowhere", json={}, timeout=5)
        assert anonymous.status_code == 401
        reply = httpx.post(f"{flower.url}/api/worker/shutdown/nobody@nowhere", auth=(USER, PASSWORD), json={},
                           timeout=5)
        assert reply.status_code == 404 and "Unknown worker" in reply.text  # past the read-only check
    finally:
        flower.stop()


@pytest.mark.parametrize(("user", "password", "message"), [
    ("ad:min", "secret", "must not contain ':'"),
    ("", "secret", "ASICFLEET_FLOWER_USER is empty"),
    ("admin", "", "password is empty"),
    ("admin", "bad\x07bell", "control or unprintable"),
])
def test_unusable_credentials_are_refused_before_flower_starts(tmp_path: Path, user: str, password: str,
                                                               message: str) -> None:
    env = {**os.environ, "ASICFLEET_FLOWER_USER": user, "ASICFLEET_FLOWER_PASSWORD": password,
           "ASICFLEET_REDIS_URL": "redis://127.0.0.1:1/0", "XDG_DATA_HOME": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "flower", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done
    assert message in done.stderr and "this run's password" not in done.stderr, done.stderr
    assert not (tmp_path / "asicfleet").exists()  # nothing was started or written


@pytest.mark.parametrize("text", ["", "asicfleet", "{", "{'outcome': 'warning'", "[1, 2]", "{'outcome': 'bad'}",
                                  "{'outcome': __import__('os').system('true')}", "{" + "'x': 1, " * 5000 + "}",
                                  None, 42])
def test_results_that_are_not_ours_are_never_shown_as_warnings(text: object) -> None:
    from fleet.task_results import outcome_of, summary_of

    assert outcome_of(text) is None and summary_of(text) is None
