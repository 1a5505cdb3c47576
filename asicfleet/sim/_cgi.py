"""The web front of firmwares built on Bitmain's lighttpd + CGI layout under a realm of their own.

Elphapex and blackMiner (Hammer, VolcMiner) firmwares serve `/cgi-bin/<name>.cgi` as stock Antminer does,
behind HTTP digest auth in front of every path, `/` included, so an unauthenticated `GET /` answers 401
with the realm that names the firmware. A family sets `realm` and `cgi_handlers`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner, digest_ok
from asicfleet.sim.antminer import WORK_MODE_SCALE, AntminerStockSim, _error_page


class AntminerLikeSim(AntminerStockSim):
    """The stock Antminer simulator's CGI handlers and state under another realm (`handle_http`: the page behind
    the login is a bare app shell), with figures kept at MH/s precision for these Scrypt miners."""

    realm: ClassVar[str]
    # the stock simulator's unannotated values narrow these ClassVars (two services, an int port); these
    # firmwares serve other ports and send no IP report, so the declared types of SimMiner are restored here
    services: ClassVar[tuple[Service, ...]] = AntminerStockSim.services  # type: ignore[assignment]
    ip_report_port: ClassVar[int | None] = None  # type: ignore[assignment]
    cgi_handlers: ClassVar[Mapping[str, Callable[[Any, HttpRequest], HttpResponse]]]

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        # these are Scrypt miners of a few GH/s: keep the MH/s digits that a TH/s figure rounded to
        # three decimals would drop (the firmwares report MH/s)
        miner.state.hashrate_ths = round(model.nominal_ths * rng.uniform(0.95, 1.03), 7)
        miner.state.extra["base_ths"] = miner.state.hashrate_ths
        return miner

    def _apply_work_mode(self, mode: int) -> None:
        super()._apply_work_mode(mode)
        self.state.hashrate_ths = round(self.state.extra["base_ths"] * WORK_MODE_SCALE.get(mode, 1.0), 7)

    def digest_challenge(self) -> str:
        return (f'Digest realm="{self.realm}", nonce="{int(time.time()):08x}{self.rng.getrandbits(64):016x}", '
                'qop="auth"')

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if self.auth_refused() or not digest_ok(request, self.realm, self.state.username, self.state.password):
            page = _error_page(401, "401 Unauthorized")
            page.headers["WWW-Authenticate"] = self.digest_challenge()
            return page
        self.count(f"auth:{request.method} {request.path}")  # requests that got past the login
        if request.path in ("/", "/index.html"):
            return HttpResponse.html("<!DOCTYPE html><html><head><title>Miner</title></head>"
                                     '<body><div id="app"></div></body></html>')
        name = request.path.removeprefix("/cgi-bin/").removesuffix(".cgi") \
            if request.path.startswith("/cgi-bin/") and request.path.endswith(".cgi") else ""
        handler = self.cgi_handlers.get(name)
        if handler is None:
            self.count(f"unknown:{request.method} {request.path}")  # what a client asked that we cannot answer
            return _error_page(404, "404 Not Found")
        return handler(self, request)
