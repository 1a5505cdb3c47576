"""Simulated Hiveon ASIC firmware on Antminer hardware (S19, S19j Pro, S19k Pro).

Hiveon keeps the stock Antminer stack, so this serves what `antminer.py` serves (bmminer RPC on 4028,
lighttpd with digest auth in the "antMiner Configuration" realm on 80, the same CGI scripts and reply shapes)
with Hiveon's differences, as pyasic 0.79 (`miners/backends/hiveon.py`, `web/hiveon.py`, the factory's
Hiveon special case) reads them:

- the model string ends in ` HIVEON`, in RPC `version`/`stats` `Type` and in `get_system_info.cgi` `minertype`,
  spelt as pyasic's Hiveon table has it (`Antminer S19jPro HIVEON`);
- the device row of RPC `stats` has `chain_power` (`"3250.18 W"`);
- `blink.cgi` takes the form field `action`: `startBlink` (code B000), `stopBlink` (B100), `onPageLoaded`
  (reads the state), each answered with `{"code", "msg", "blink"}`;
- the firmware version is the build's compile time (`VERSION[0].CompileTime`, `system_filesystem_version`).

No Hiveon capture is published; the marker placement and `chain_power` come from pyasic's code, the figures
from `self.state`. Hiveon's own pages (its dashboard, overclocking profiles) are not simulated.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, SimMiner, digest_ok
from asicfleet.sim.antminer import REALM, AntminerStockSim

# the models this firmware serves, and how Hiveon spells each (pyasic's Hiveon table: ANTMINER S19JPRO ...)
REPORTED_NAMES = {
    "Antminer S19": "Antminer S19",
    "Antminer S19j Pro": "Antminer S19jPro",
    "Antminer S19k Pro": "Antminer S19k Pro",
}
SUFFIX = " HIVEON"


class HiveonSim(AntminerStockSim):
    family = "hiveon"
    make = "AntMiner"
    firmware = "Hive"
    models = tuple(REPORTED_NAMES)

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.make == cls.make and model.name in REPORTED_NAMES

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        assert isinstance(miner, HiveonSim)
        miner.state.firmware_version = miner.build_info.compile_time
        return miner

    @property
    def reported_type(self) -> str:
        return REPORTED_NAMES.get(self.model_name, self.model_name) + SUFFIX

    # ----- RPC ----------------------------------------------------------------------------------
    def _program_row(self) -> dict[str, Any]:
        return {**super()._program_row(), "Type": self.reported_type}

    def _rpc_version(self) -> dict[str, Any]:
        reply = super()._rpc_version()
        reply["VERSION"][0].update(Type=self.reported_type, CompileTime=self.state.firmware_version)
        return reply

    def _rpc_stats(self) -> dict[str, Any]:
        reply = super()._rpc_stats()
        s = self.state
        reply["STATS"][1]["chain_power"] = f"{s.wattage if s.mining else 0:.2f} W"
        return reply

    # ----- web ----------------------------------------------------------------------------------
    def _system_info(self, request: HttpRequest) -> HttpResponse:
        info = orjson.loads(super()._system_info(request).body)
        info["minertype"] = self.reported_type
        return HttpResponse.of_json(info)

    def _blink(self, request: HttpRequest) -> HttpResponse:
        action = str(self._body(request).get("action", ""))
        if action == "startBlink":
            self.state.fault_light = True
            return HttpResponse.of_json({"code": "B000", "msg": "Blink started", "blink": True})
        if action == "stopBlink":
            self.state.fault_light = False
            return HttpResponse.of_json({"code": "B100", "msg": "Blink stopped", "blink": False})
        if action == "onPageLoaded":
            return HttpResponse.of_json({"code": "B200", "msg": "", "blink": self.state.fault_light})
        return HttpResponse.of_json({"code": "B300", "msg": f"unknown action {action!r}",
                                     "blink": self.state.fault_light})

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        """The stock server, with Hiveon's two scripts in place of stock's (once the login has passed)."""
        own = {"/cgi-bin/get_system_info.cgi": self._system_info, "/cgi-bin/blink.cgi": self._blink}.get(request.path)
        if own is None or self.auth_refused() or not digest_ok(request, REALM, self.state.username,
                                                               self.state.password):
            return await super().handle_http(request)  # which answers the 401 too
        self.count(f"auth:{request.method} {request.path}")
        return own(request)
