"""The web dashboard with real parts: a private redis-server, a simulated site of 30 miners, a distributed scan
and the recurring collection on two real workers (one with beat, rounds every 2 s, the rule engine after each),
`asicfleet dashboard`'s app served by uvicorn, and a headless Chromium.

One simulated miner degrades to half its rate (a rule turns its fault light on), one is switched off (offline);
a second site of 3,000 miners is ingested the way a finished scan feeds the monitor, for the table's paging."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from asicfleet.data import HashRate, MinerData
from asicfleet.sim import SimFleet
from fleet import monitor
from fleet.ledger import MinerStep, RolloutLedger
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions
from fleet.store import ScanStatus, ScanStore, miners_key, scan_key, scans_key
from orchestrator.dashboard import Dashboard, DashboardAuth, DashboardConfigError, RunningDashboard
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import EmbeddedRedis, free_port
from orchestrator.watch import Orchestrator
from tests.browser import chromium
from tests.conftest import ThreadedFleet, lo

SITE = "dash"
BIG = "big"
SUBNET = lo("127.225.0.0/24")
BIG_BASE = ipaddress.IPv4Address(lo("127.226.0.0"))
BIG_COUNT = 3000
PASSWORD = "dashboard-test-pw"
LIVENESS = "3"
INTERVAL = "2"


@dataclass
class Site:
    redis_url: str
    fleet: SimFleet
    threaded: ThreadedFleet
    degraded: str  # half its nominal rate: the rule fires on it
    switched_off: str  # offline
    healthy: str  # an AntMiner left alone (the action test lights it)
    settings: FleetSettings
    workdir: Path


def _options(fleet: SimFleet) -> DiscoveryOptions:
    assert fleet.ports is not None
    return DiscoveryOptions(ports=str(fleet.ports), concurrency=100, connect_timeout=0.5, read_timeout=2.0,
                            identify_timeout=4.0)


def _round_after(client: redis.Redis, moment: float, timeout: float = 30.0) -> monitor.RoundInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = monitor.last_round(client, SITE)
        if info is not None and info.finished is not None and info.started > moment:
            return info
        assert time.monotonic() < deadline, f"no collection round after {moment} within {timeout:g}s: {info}"
        time.sleep(0.2)


def _big_site(client: redis.Redis, sample: list[MinerData]) -> list[MinerData]:
    """3,000 miners cloned from real readings at new addresses, each with its own hash rate, ingested as a
    finished scan's inventory is (`monitor.ingest_inventory`); never read (the site has no collection)."""
    out = []
    for n in range(BIG_COUNT):
        base = sample[n % len(sample)]
        rate = round(10.0 + (n * 7919 % BIG_COUNT) / 10, 1)  # distinct, shuffled against the address
        out.append(base.model_copy(update={"ip": BIG_BASE + 1 + n, "hashrate": HashRate(value=rate)}))
    monitor.ingest_inventory(client, BIG, out)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("dashboard")
    sim = SimFleet.generate(SUBNET, 30, ["antminer", "whatsminer", "braiins", "avalon", "bitaxe"], seed=14)
    threaded = ThreadedFleet(sim)
    with EmbeddedRedis() as server, threaded as fleet:
        options = _options(fleet)
        sites_file = workdir / "sites.yaml"
        sites_file.write_text(f"sites:\n  {SITE}:\n    ranges: ['{SUBNET}']\n    collect_every_minutes: 1\n"
                              f"    discovery: {options.model_dump_json()}\n")
        antminers = sorted((ip for ip, m in fleet.miners.items() if m.family == "antminer"),
                           key=lambda a: ipaddress.IPv4Address(a))
        degraded, healthy = antminers[0], antminers[1]
        switched_off = next(ip for ip, m in sorted(fleet.miners.items()) if m.family == "whatsminer")
        rules_file = workdir / "rules.yaml"
        rules_file.write_text(
            "rules:\n  - name: low-hashrate\n    when: {kind: hashrate_below, percent: 80}\n"
            f"    scope: {{sites: [{SITE}]}}\n    actions: [{{kind: fault_light}}]\n    cooldown_minutes: 60\n")
        env = {"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS, "ASICFLEET_SITES_FILE": str(sites_file),
               "ASICFLEET_COLLECT_INTERVAL_SECONDS": INTERVAL, "ASICFLEET_RULES_FILE": str(rules_file)}
        with_beat, names = start_workers(server.url, 1, SITE, beat=True, extra_env=env)
        plain, more = start_workers(server.url, 1, SITE, extra_env=env)
        processes = with_beat + plain
        try:
            wait_for_workers(server.url, names + more, processes)
            settings = FleetSettings(redis_url=server.url, worker_liveness_seconds=float(LIVENESS),
                                     sites_file=sites_file)
            orchestrator = Orchestrator(settings)
            scan_id = orchestrator.start_scan([SUBNET], site=SITE, options=options)
            assert orchestrator.watch(scan_id, timeout=60).miners == 30
            client = redis.Redis.from_url(server.url)
            _round_after(client, time.time())  # a round at full rate, then the two changes
            sick = fleet.miners[degraded].state
            sick.hashrate_ths = round(sick.model.nominal_ths * 0.5, 2)
            threaded.run(fleet.switch_off(switched_off))
            changed = time.time()
            first_after = _round_after(client, changed)
            _round_after(client, first_after.started)  # a second point of history after the change (a later round)
            _big_site(client, [s.data for s in monitor.known_miners(client, SITE) if s.data is not None])
            client.close()
            yield Site(server.url, fleet, threaded, degraded, switched_off, healthy, settings, workdir)
        finally:
            stop_processes(processes)


@pytest.fixture(scope="module")
def url(site: Site) -> Iterator[str]:
    policy = DashboardAuth(password=SecretStr(PASSWORD))
    board = Dashboard.from_settings(site.settings, policy, refresh_seconds=1.0)
    with RunningDashboard(board, "127.0.0.1", free_port()) as served:
        yield served.rstrip("/")


def _csrf(page: str) -> str:
    found = re.search(r'data-csrf="([^"]*)"', page)
    assert found is not None
    return found[1]


@contextmanager
def _logged_in(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        reply = client.post("/login", data={"user": "admin", "password": PASSWORD, "next": "/miners"})
        assert reply.status_code == 303 and reply.headers["location"] == "/miners"
        yield client


# ----- HTTP ----------------------------------------------------------------------------------------
def test_totals_per_site_count_online_offline_and_rates(url: str, site: Site) -> None:
    totals = {s["site"]: s for s in httpx.get(f"{url}/api/totals").json()["sites"]}
    assert set(totals) == {"all", SITE, BIG}
    dash = totals[SITE]
    assert (dash["miners"], dash["online"], dash["offline"]) == (30, 29, 1)
    assert dash["degraded"] >= 1
    nominal = sum(m.state.model.nominal_ths for ip, m in site.fleet.miners.items() if ip != site.switched_off)
    assert dash["expected_hashrate"] == pytest.approx(nominal, rel=0.01)
    assert 0 < dash["hashrate"] < dash["expected_all"]
    assert dash["power"] > 0 and dash["efficiency"] == pytest.approx(dash["power"] / dash["hashrate"], rel=0.01)
    assert totals["all"]["miners"] == 30 + BIG_COUNT


def test_the_table_pages_sorts_and_filters_thousands_of_rows_on_the_server(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get("/api/miners")  # the first read parses every reading; the rest reuse it
        seen: list[dict[str, Any]] = []
        started = time.perf_counter()
        for page in range(1, 7):
            reply = client.get("/api/miners", params={"site": BIG, "sort": "-hashrate", "per_page": 500,
                                                      "page": page}).json()
            assert (reply["total"], reply["matched"], reply["pages"]) == (30 + BIG_COUNT, BIG_COUNT, 6)
            seen += reply["rows"]
        per_page = (time.perf_counter() - started) / 6
        assert per_page < 0.5, f"{per_page:.3f} s per page of 500 out of 3,030 rows"
        rates = [r["hashrate"] for r in seen]
        assert len(seen) == BIG_COUNT and len({r["ip"] for r in seen}) == BIG_COUNT
        assert rates == sorted(rates, reverse=True) and rates[0] == pytest.approx(10.0 + (BIG_COUNT - 1) / 10)

        by_ip = client.get("/api/miners", params={"site": BIG, "per_page": 10, "page": 1}).json()["rows"]
        assert [r["ip"] for r in by_ip] == [str(BIG_BASE + n) for n in range(1, 11)]  # numeric, not text, order
        last = client.get("/api/miners", params={"site": BIG, "per_page": 100, "page": 999}).json()
        assert last["page"] == 30 and len(last["rows"]) == 100  # past the end: the last page

        word = seen[0]["model"]
        matched = client.get("/api/miners", params={"q": f"{BIG_BASE + 1}"[:-1] + " " + word.lower(),
                                                    "per_page": 500}).json()
        assert matched["matched"] > 0 and all(r["model"] == word and r["site"] == BIG for r in matched["rows"])
        offline = client.get("/api/miners", params={"status": "offline"}).json()
        assert offline["matched"] == 1 and offline["rows"][0]["site"] == SITE
        assert client.get("/api/miners", params={"sort": "password"}).status_code == 400
        assert client.get("/api/miners", params={"per_page": 100000}).status_code == 400


def test_the_miner_history_has_a_point_per_collection_and_per_board(url: str, site: Site) -> None:
    history = httpx.get(f"{url}/api/miners/{site.degraded}/history", params={"hours": 1}).json()
    assert len(history["times"]) >= 3 and history["times"] == sorted(history["times"])
    nominal = site.fleet.miners[site.degraded].state.model.nominal_ths
    assert history["hashrate"][0] == pytest.approx(nominal, rel=0.05)  # before: the full rate
    assert history["hashrate"][-1] == pytest.approx(nominal * 0.5, rel=0.05)  # after: half
    assert len(history["boards"]) == site.fleet.miners[site.degraded].state.model.boards
    assert sum(b["hashrate"][-1] for b in history["boards"]) == pytest.approx(history["hashrate"][-1], rel=0.01)
    off = httpx.get(f"{url}/api/miners/{site.switched_off}").json()
    assert off["row"]["status"] == "offline" and off["row"]["last_seen"] is not None


def test_the_rule_firing_is_listed_with_what_was_seen_and_its_outcome(url: str, site: Site) -> None:
    deadline = time.monotonic() + 30
    while True:
        firings = httpx.get(f"{url}/api/miners/{site.degraded}/firings").json()["firings"]
        if firings and firings[0]["state"] in ("done", "failed"):
            break
        assert time.monotonic() < deadline, f"the rule's action did not end: {firings}"
        time.sleep(0.5)
    assert firings[0]["rule"] == "low-hashrate" and firings[0]["state"] == "done"
    assert firings[0]["values"]["percent_of_expected"] == pytest.approx(50, abs=3)
    assert site.fleet.miners[site.degraded].state.fault_light is True  # the action reached the miner
    everything = httpx.get(f"{url}/api/firings").json()
    assert everything["available"] and [f["ip"] for f in everything["firings"]] == [site.degraded]


def test_actions_are_refused_without_a_login_and_a_csrf_token(url: str, site: Site) -> None:
    client = redis.Redis.from_url(site.redis_url, decode_responses=True)
    before = RolloutLedger(client, 1).recent(100)
    action = f"/api/miners/{site.healthy}/actions/light-on"
    with httpx.Client(base_url=url, timeout=30) as anonymous:
        assert anonymous.post(action).status_code == 401
        page = anonymous.get(f"/miners/{site.healthy}").text
        assert 'id="action-buttons"' not in page and "Log in</a> to restart" in page
        wrong = anonymous.post("/login", data={"user": "admin", "password": "not-the-password"})
        assert wrong.status_code == 401 and anonymous.post(action).status_code == 401
    with _logged_in(url) as session:
        token = _csrf(session.get(f"/miners/{site.healthy}").text)
        assert token
        assert session.post(action).status_code == 403  # no token
        assert session.post(action, headers={"X-CSRF-Token": token + "x"}).status_code == 403
        assert session.post(action, headers={"X-CSRF-Token": token,
                                             "Origin": "http://evil.example"}).status_code == 403
    assert RolloutLedger(client, 1).recent(100) == before  # nothing was planned, let alone sent
    assert site.fleet.miners[site.healthy].state.fault_light is False
    client.close()


def test_a_logged_in_fault_light_reaches_the_miner_through_a_rollout(url: str, site: Site) -> None:
    with _logged_in(url) as session:
        token = _csrf(session.get(f"/miners/{site.healthy}").text)
        reply = session.post(f"/api/miners/{site.healthy}/actions/light-on", headers={"X-CSRF-Token": token})
        assert reply.status_code == 202, reply.text
        rollout_id = reply.json()["rollout_id"]
        client = redis.Redis.from_url(site.redis_url, decode_responses=True)
        deadline = time.monotonic() + 40
        while (state := RolloutLedger(client, 1).miners(rollout_id)[site.healthy]["state"]) != MinerStep.VERIFIED:
            assert state not in (MinerStep.FAILED, MinerStep.SKIPPED), state
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        client.close()
        assert site.fleet.miners[site.healthy].state.fault_light is True
        shown = session.get(f"/api/miners/{site.healthy}/rollouts").json()["rollouts"]
        assert shown[0]["rollout_id"] == rollout_id and shown[0]["control"] == "fault light (on=True)"
        assert [s["step"] for s in shown[0]["steps"]][-1] == "verified"
        listed = session.get("/api/rollouts").json()["rollouts"]
        assert rollout_id in [r["rollout_id"] for r in listed]
        unknown = session.post(f"/api/miners/{site.healthy}/actions/format-disk", headers={"X-CSRF-Token": token})
        assert unknown.status_code == 404


def test_a_logged_in_power_limit_is_applied_and_bad_values_are_refused_before_planning(url: str,
                                                                                        site: Site) -> None:
    client = redis.Redis.from_url(site.redis_url, decode_responses=True)
    braiins = next(ip for ip, m in sorted(site.fleet.miners.items()) if m.family == "braiins")  # has a power target
    action = f"/api/miners/{braiins}/actions/power-limit"
    with _logged_in(url) as session:
        token = _csrf(session.get(f"/miners/{braiins}").text)
        before = RolloutLedger(client, 1).recent(100)
        for bad in ({}, {"watts": None}, {"watts": -5}, {"watts": "lots"}):
            refused = session.post(action, json=bad, headers={"X-CSRF-Token": token})
            assert refused.status_code == 400, (bad, refused.text)
        assert RolloutLedger(client, 1).recent(100) == before  # nothing planned for a bad value
        reply = session.post(action, json={"watts": 2800}, headers={"X-CSRF-Token": token})
        assert reply.status_code == 202, reply.text
        rollout_id = reply.json()["rollout_id"]
        deadline = time.monotonic() + 60
        while (state := RolloutLedger(client, 1).miners(rollout_id)[braiins]["state"]) != MinerStep.VERIFIED:
            assert state not in (MinerStep.FAILED, MinerStep.SKIPPED), state
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
    client.close()
    assert site.fleet.miners[braiins].state.power_limit == 2800


def test_beyond_loopback_only_with_a_login_and_then_for_every_page(site: Site) -> None:
    with pytest.raises(DashboardConfigError, match="beyond loopback it needs a login"):
        DashboardAuth().for_host("0.0.0.0")
    for host in ("127.0.0.1", "127.9.9.9", "::1", "localhost"):
        assert DashboardAuth().for_host(host).login_to_read is False
    refused = subprocess.run([sys.executable, "-m", "orchestrator.cli", "dashboard", "--host", "0.0.0.0", "--port",
                              str(free_port())], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "ASICFLEET_REDIS_URL": site.redis_url})
    assert refused.returncode == 2 and "refusing to serve the dashboard on 0.0.0.0" in refused.stderr
    policy = DashboardAuth(password=SecretStr(PASSWORD)).for_host("0.0.0.0")
    assert policy.login_to_read
    # served on loopback here, with the policy it would have beyond it: nothing is read without a login
    board = Dashboard.from_settings(site.settings, policy)
    with RunningDashboard(board, "127.0.0.1", free_port()) as served:
        base = served.rstrip("/")
        assert board.auth.login_to_read
        assert httpx.get(f"{base}/api/totals").status_code == 401
        redirect = httpx.get(f"{base}/miners")
        assert redirect.status_code == 303 and redirect.headers["location"] == "/login?next=/miners"
        assert httpx.get(f"{base}/login").status_code == 200
        with _logged_in(base) as session:
            assert session.get("/api/totals").status_code == 200


def test_pages_carry_a_strict_content_security_policy(url: str) -> None:
    reply = httpx.get(f"{url}/")
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert "<script>" not in reply.text and "cdn" not in reply.text.lower()
    assert httpx.get(f"{url}/static/uPlot.iife.min.js").status_code == 200


# ----- the browser -----------------------------------------------------------------------------------
def test_in_a_browser_totals_table_filter_and_a_miner_chart(url: str, site: Site) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium(site.workdir / "chromium") as driver:
        # the pages redraw their figures on every refresh (each second here): an element may go between
        # finding it and reading it, and is then found again
        wait = WebDriverWait(driver, 20, ignored_exceptions=[StaleElementReferenceException])
        driver.get(f"{url}/")
        def card(d: Any) -> str:  # the cards are redrawn on every refresh: found again each time
            found = d.find_elements(By.CSS_SELECTOR, f'article.site[data-site="{SITE}"]')
            return str(found[0].get_attribute("textContent")) if found else ""

        text = wait.until(lambda d: card(d) if "29 online" in card(d) else "")
        assert "1 offline" in text and "of expected" in text and "Site dash" in text
        driver.save_screenshot(str(site.workdir / "fleet.png"))

        driver.get(f"{url}/miners?site={SITE}")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#miners tbody").get_attribute("data-rows") == "30")
        target = site.degraded
        box = driver.find_element(By.ID, "q")
        box.send_keys(target)

        def rows(d: Any) -> list[list[str]]:  # each row's cells, read at once
            return d.execute_script("return [...document.querySelectorAll('#miners tbody tr')]"
                                    ".map(r => [...r.cells].map(c => c.textContent))")  # type: ignore[no-any-return]

        expected = sorted(ip for ip in site.fleet.miners if target in ip)  # .19 also matches .190 ...
        filtered = wait.until(lambda d: rows(d) if sorted(r[0] for r in rows(d)) == expected else [])
        assert next(r for r in filtered if r[0] == target)[5] == "degraded"
        assert f"q={target}" in driver.current_url  # a reload keeps the filter
        def click(d: Any) -> bool:  # a link of a row redrawn between finding and clicking is found again
            d.find_element(By.LINK_TEXT, target).click()
            return True

        wait.until(click)

        wait.until(lambda d: d.execute_script(
            "const c = window.dashboardCharts['chart-hashrate']; return c ? c.data[0].length : 0") >= 3)
        canvas = driver.find_element(By.CSS_SELECTOR, "#chart-hashrate canvas")
        assert canvas.size["width"] > 300 and canvas.size["height"] > 100
        series = driver.execute_script("return window.dashboardCharts['chart-hashrate'].data[1]")
        assert min(v for v in series if v is not None) < 0.6 * max(v for v in series if v is not None)
        boards = driver.execute_script("return window.dashboardCharts['chart-boards-hashrate'].series.length")
        assert boards == 1 + site.fleet.miners[target].state.model.boards
        wait.until(lambda d: "low-hashrate" in d.find_element(By.ID, "firings").text)
        driver.save_screenshot(str(site.workdir / "miner.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors


def test_a_fleet_only_scanned_so_far_is_shown_from_its_scans(site: Site) -> None:
    """No collection yet: the totals, table, miner page and scans list come from what the scans stored."""
    client = redis.Redis.from_url(site.redis_url)
    readings = [s.data for s in monitor.known_miners(client, SITE) if s.data is not None][:12]
    client.close()
    with EmbeddedRedis() as other:
        store = ScanStore.from_url(other.url, ttl_seconds=600)
        for n, (scan_id, found) in enumerate((("20261203T100000-aaaaaa", readings),
                                              ("20261203T110000-bbbbbb", readings[:-1]))):
            store.create_scan(scan_id, targets=[SUBNET], site="east", chunk_prefix=24,
                              chunks=[(SUBNET, SUBNET, SUBNET, 256)], options=_options(site.fleet).model_dump())
            store.redis.zadd(scans_key(), {scan_id: 1_000_000 + n})  # in this order, whatever the clock
            store.redis.hset(scan_key(scan_id), "created", 1_000_000 + n)
            for data in found:  # as a worker writes each miner it read
                store.redis.hset(miners_key(scan_id), str(data.ip), data.model_dump_json())
            store.finish_scan(scan_id, ScanStatus.DONE)
        board = Dashboard.from_settings(FleetSettings(redis_url=other.url), DashboardAuth())
        with RunningDashboard(board, "127.0.0.1", free_port()) as served:
            base = served.rstrip("/")
            totals = httpx.get(f"{base}/api/totals").json()
            assert totals["source"] == "scans"
            east = totals["sites"][0]
            assert (east["site"], east["miners"], east["online"], east["offline"]) == ("east", 12, 11, 1)
            missing = str(readings[-1].ip)  # absent from the latest scan: offline
            assert httpx.get(f"{base}/api/miners", params={"status": "offline"}).json()["rows"][0]["ip"] == missing
            history = httpx.get(f"{base}/api/miners/{readings[0].ip}/history", params={"hours": 24 * 31}).json()
            assert len(history["times"]) == 2  # one point per scan that read it
            scans = httpx.get(f"{base}/api/scans").json()["scans"]
            assert [s["status"] for s in scans] == ["done", "done"] and scans[0]["miners"] == 11
