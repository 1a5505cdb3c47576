"""The dashboard's web app (Starlette + Jinja2): HTML pages that fetch their figures from JSON endpoints and
refresh them every few seconds; actions behind a login.

Pages: `/` fleet totals per site, `/miners` the table, `/miners/{ip}` one miner with its charts and actions,
`/rules` rule firings, `/scans`, `/rollouts`. JSON: `/api/...` (the same figures; see `routes`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asicfleet import MinerError
from fleet.resilience import redis_location
from fleet.settings import FleetSettings
from fleet.store import ChunkState, ScanStatus, ScanStore
from orchestrator.dashboard import auth
from orchestrator.dashboard.actions import ACTIONS, ActionRunner
from orchestrator.dashboard.auth import DashboardAuth
from orchestrator.dashboard.firings import FiringSource, NoFirings
from orchestrator.dashboard.rows import TableQuery, query_table, site_totals
from orchestrator.dashboard.sources import FleetSource, RolloutReader

HERE = Path(__file__).resolve().parent
LOGIN_DELAY = 0.5  # seconds a wrong password waits: guessing stays slow
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


@dataclass
class Dashboard:
    """What the app serves from: the fleet's Redis, its sources, the login policy, the actions."""

    settings: FleetSettings
    auth: DashboardAuth
    source: FleetSource
    rollouts: RolloutReader
    scans: ScanStore
    firings: FiringSource = field(default_factory=NoFirings)
    actions: ActionRunner | None = None
    refresh_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: FleetSettings, policy: DashboardAuth, *, refresh_seconds: float = 5.0,
                      source: FleetSource | None = None, firings: FiringSource | None = None) -> Dashboard:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10,
                                      decode_responses=True)
        # a request waits a few seconds for Redis, never the minute a scan's writes ride out
        quick = settings.model_copy(update={"redis_retry_seconds": min(settings.redis_retry_seconds, 5.0)})
        from orchestrator.dashboard.firings import default_firings  # the rule engine's ledger, where present
        from orchestrator.dashboard.sources import default_source  # collection history, where present

        return cls(quick, policy, source or default_source(client, quick), RolloutReader(client),
                   ScanStore(client, ttl_seconds=1), firings or default_firings(client), ActionRunner(quick),
                   refresh_seconds)


class SecurityHeaders:
    """CSP (no inline script: a page's data comes from the API), no framing, no MIME sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    return _templates(request).TemplateResponse(request, "error.html", {"message": message, **_common(request)},
                                                status_code=status)


def _templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates  # type: ignore[no-any-return]


def _dash(request: Request) -> Dashboard:
    return request.app.state.dashboard  # type: ignore[no-any-return]


def _common(request: Request) -> dict[str, Any]:
    dash = _dash(request)
    return {"logged_in": auth.logged_in(request), "login_possible": dash.auth.configured,
            "csrf": auth.csrf_token(request) if auth.logged_in(request) else "",
            "refresh_ms": int(dash.refresh_seconds * 1000), "source": dash.source.name,
            "user": request.session.get("user", "")}


Endpoint = Callable[[Request], Awaitable[Response]]


def readable(endpoint: Endpoint) -> Endpoint:
    """A view: open unless the policy asks for a login to read; Redis down is a 503 that says so."""
    async def wrapped(request: Request) -> Response:
        dash = _dash(request)
        if dash.auth.login_to_read and not auth.logged_in(request):
            if _wants_json(request):
                return JSONResponse({"error": "log in first"}, status_code=401)
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        try:
            return await endpoint(request)
        except redis.RedisError as exc:
            return _error(request, 503, f"no Redis answers at {redis_location(dash.settings.redis_url)} "
                                        f"({type(exc).__name__}); the figures come back when it does")
    wrapped.__name__ = endpoint.__name__
    return wrapped


def _page(name: str) -> Endpoint:
    async def page(request: Request) -> Response:
        return _templates(request).TemplateResponse(request, name, _common(request))
    page.__name__ = name.removesuffix(".html")
    return page


# ----- JSON ----------------------------------------------------------------------------------------
async def api_totals(request: Request) -> Response:
    rows = await run_in_threadpool(_dash(request).source.rows)
    return JSONResponse({"sites": [s.to_json() for s in site_totals(rows)], "source": _dash(request).source.name,
                         "at": time.time()})


def _hours(request: Request, default: float = 24.0) -> float:
    try:
        return min(max(float(request.query_params.get("hours", default)), 0.05), 24 * 31)
    except ValueError:
        return default


async def api_site_history(request: Request) -> Response:
    since = time.time() - _hours(request, 24.0) * 3600
    return JSONResponse(await run_in_threadpool(_dash(request).source.site_history, since))


async def api_miners(request: Request) -> Response:
    try:
        query = TableQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        return JSONResponse({"error": "; ".join(str(e["msg"]) for e in exc.errors())}, status_code=400)
    rows = await run_in_threadpool(_dash(request).source.rows)
    return JSONResponse(query_table(rows, query).to_json())


async def api_miner(request: Request) -> Response:
    ip = request.path_params["ip"]
    detail = await run_in_threadpool(_dash(request).source.miner, ip)
    if detail is None:
        return JSONResponse({"error": f"no miner {ip} in the fleet's records"}, status_code=404)
    data = detail.data
    return JSONResponse({"row": detail.row.to_json(), "site": detail.row.site,
                         "boards": [{k: b.get(k) for k in ("position", "hashrate", "expected_hashrate",
                                                             "board_temperature", "outlet_temperature",
                                                             "working_chips", "expected_chips", "active")}
                                    for b in data.get("hashboards") or []],
                         "fans": data.get("fans") or [], "pools": data.get("pools") or [],
                         "errors": data.get("errors") or [], "messages": data.get("messages") or [],
                         "uptime": data.get("uptime"), "mac": data.get("mac"),
                         "serial_number": data.get("serial_number"),
                         "actions": [{"name": a.name, "label": a.label, "parameter": a.parameter, "unit": a.unit}
                                     for a in ACTIONS.values()]})


async def api_miner_history(request: Request) -> Response:
    since = time.time() - _hours(request, 24.0) * 3600
    series = await run_in_threadpool(_dash(request).source.history, request.path_params["ip"], since)
    return JSONResponse(series.to_json())


async def api_miner_rollouts(request: Request) -> Response:
    reader = _dash(request).rollouts
    ip = request.path_params["ip"]
    found = await run_in_threadpool(reader.recent, 50, ip)
    out = []
    for summary in found[:10]:
        steps = await run_in_threadpool(reader.steps, summary.rollout_id, ip)
        out.append({**summary.to_json(), "steps": steps})
    return JSONResponse({"rollouts": out})


async def api_miner_firings(request: Request) -> Response:
    firings = await run_in_threadpool(_dash(request).firings.recent, 50, request.path_params["ip"])
    return JSONResponse({"firings": firings, "available": _dash(request).firings.available})


async def api_rollouts(request: Request) -> Response:
    found = await run_in_threadpool(_dash(request).rollouts.recent, 30)
    return JSONResponse({"rollouts": [r.to_json() for r in found]})


async def api_firings(request: Request) -> Response:
    firings = await run_in_threadpool(_dash(request).firings.recent, 200, None)
    return JSONResponse({"firings": firings, "available": _dash(request).firings.available})


def _scan_rows(store: ScanStore, limit: int) -> list[dict[str, Any]]:
    """Recent scans with their status worked out from their chunks (a chunk held by a worker that stopped
    beating makes the scan `stuck`), as `asicfleet scans` shows them."""
    out = []
    for info in store.recent_scans(limit):
        chunks = store.chunks(info.scan_id, info.total_chunks)
        states: dict[str, int] = {}
        for chunk in chunks:
            states[chunk.state.value] = states.get(chunk.state.value, 0) + 1
        ended = states.get("done", 0) + states.get("failed", 0)
        held = [c for c in chunks if c.state in (ChunkState.RESERVED, ChunkState.RUNNING)]
        alive = store.live_workers(c.worker for c in held if c.worker)
        status = info.status.value
        if ended >= info.total_chunks:
            status = ScanStatus.FAILED.value if states.get("failed") else ScanStatus.DONE.value
        elif info.status is ScanStatus.RUNNING and held and all(c.worker not in alive for c in held):
            status = "stuck"
        probed = sum(c.addresses if c.state is ChunkState.DONE else c.probed for c in chunks)
        out.append({"scan_id": info.scan_id, "created": info.created, "finished": info.finished,
                    "site": info.site or "", "targets": info.targets, "status": status,
                    "chunks_total": info.total_chunks, "chunks": states, "addresses_total": info.total_addresses,
                    "addresses_probed": probed, "miners": store.miner_count(info.scan_id),
                    "errors": store.error_count(info.scan_id)})
    return out


async def api_scans(request: Request) -> Response:
    return JSONResponse({"scans": await run_in_threadpool(_scan_rows, _dash(request).scans, 30)})


# ----- actions -------------------------------------------------------------------------------------
async def api_action(request: Request) -> Response:
    """POST /api/miners/{ip}/actions/{name}: logged in, same origin, the session's CSRF token."""
    dash = _dash(request)
    if not auth.same_origin(request):
        return JSONResponse({"error": "refused: the request came from another site"}, status_code=403)
    if not auth.logged_in(request):
        return JSONResponse({"error": "log in to act on miners" if dash.auth.configured else
                             "actions are off: start the dashboard with ASICFLEET_DASHBOARD_PASSWORD set"},
                            status_code=401)
    submitted = request.headers.get("x-csrf-token")
    if submitted is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        submitted = str((await request.form()).get("csrf") or "")
    if not auth.csrf_ok(request, submitted):
        return JSONResponse({"error": "refused: missing or wrong CSRF token (reload the page)"}, status_code=403)
    action = ACTIONS.get(request.path_params["name"])
    if action is None:
        return JSONResponse({"error": f"unknown action; known: {', '.join(ACTIONS)}"}, status_code=404)
    detail = await run_in_threadpool(dash.source.miner, request.path_params["ip"])
    if detail is None:
        return JSONResponse({"error": f"no miner {request.path_params['ip']} in the fleet's records"},
                            status_code=404)
    assert dash.actions is not None
    values: dict[str, Any] = {}
    if action.parameter is not None:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await request.json()
            values = body if isinstance(body, dict) else {}
        else:
            values = dict((await request.form()).items())
        if values.get(action.parameter) in (None, ""):
            return JSONResponse({"error": f"{action.label}: give {action.parameter}"}, status_code=400)
    try:
        outcome = await dash.actions.run(action, detail, values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"{action.label} refused: {problems}"}, status_code=400)
    except (MinerError, OSError, TimeoutError) as exc:
        return JSONResponse({"error": f"{action.label} not sent: {exc}"}, status_code=502)
    return JSONResponse(outcome.to_json(), status_code=202 if outcome.ok else 409)


# ----- login ---------------------------------------------------------------------------------------
async def login_page(request: Request) -> Response:
    return _templates(request).TemplateResponse(request, "login.html",
                                                {**_common(request), "next": _safe_next(request), "failed": False})


def _safe_next(request: Request, value: str | None = None) -> str:
    target = value if value is not None else request.query_params.get("next", "/")
    # only a path of this site: never `//elsewhere` or `https://...` (an open redirect)
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


async def login(request: Request) -> Response:
    dash = _dash(request)
    form = await request.form()
    next_path = _safe_next(request, str(form.get("next") or "/"))
    if not auth.same_origin(request):
        return _error(request, 403, "refused: the login came from another site")
    if not dash.auth.configured:
        return _error(request, 403, "no login is configured: set ASICFLEET_DASHBOARD_PASSWORD and restart the "
                                    "dashboard")
    if not dash.auth.check_password(str(form.get("user") or ""), str(form.get("password") or "")):
        await asyncio.sleep(LOGIN_DELAY)
        return _templates(request).TemplateResponse(request, "login.html",
                                                    {**_common(request), "next": next_path, "failed": True},
                                                    status_code=401)
    auth.log_in(request, dash.auth.user)
    return RedirectResponse(next_path, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if auth.same_origin(request) and auth.csrf_ok(request, str(form.get("csrf") or "")):
        request.session.clear()
    return RedirectResponse("/", status_code=303)


async def miner_page(request: Request) -> Response:
    ip = request.path_params["ip"]
    detail = await run_in_threadpool(_dash(request).source.miner, ip)
    if detail is None:
        return _error(request, 404, f"no miner {ip} in the fleet's records")
    return _templates(request).TemplateResponse(request, "miner.html", {**_common(request), "ip": ip,
                                                                        "row": detail.row})


def create_app(dashboard: Dashboard) -> Starlette:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["ths"] = lambda v: "-" if v is None else f"{v:,.1f}"
    routes = [
        Route("/", readable(_page("index.html"))),
        Route("/miners", readable(_page("miners.html"))),
        Route("/miners/{ip}", readable(miner_page)),
        Route("/rules", readable(_page("rules.html"))),
        Route("/scans", readable(_page("scans.html"))),
        Route("/rollouts", readable(_page("rollouts.html"))),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/totals", readable(api_totals)),
        Route("/api/site-history", readable(api_site_history)),
        Route("/api/miners", readable(api_miners)),
        Route("/api/miners/{ip}", readable(api_miner)),
        Route("/api/miners/{ip}/history", readable(api_miner_history)),
        Route("/api/miners/{ip}/rollouts", readable(api_miner_rollouts)),
        Route("/api/miners/{ip}/firings", readable(api_miner_firings)),
        Route("/api/miners/{ip}/actions/{name}", readable(api_action), methods=["POST"]),
        Route("/api/rollouts", readable(api_rollouts)),
        Route("/api/scans", readable(api_scans)),
        Route("/api/firings", readable(api_firings)),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=dashboard.auth.secret_key, session_cookie=auth.SESSION_COOKIE,
                   max_age=auth.SESSION_HOURS * 3600, same_site="strict", https_only=False),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.dashboard = dashboard
    app.state.templates = templates
    return app
