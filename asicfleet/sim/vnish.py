"""Simulated VNish (AnthillOS web UI, "xminer-api") on Antminer hardware.

Port 80 serves the VNish web API under `/api/v1/` as its OpenAPI specification describes it
(shared/fixtures/asic-rs/meta/vnish, versions 1.2.6, 1.2.7 and 1.3.4; each simulated miner runs one of
them) and the web UI, whose page names "AnthillOS" (how pyasic and asic-rs recognise it).

- Without a login: `info`, `model`, `status`, `summary` (its login is optional), `perf-summary`,
  `chains` (1.2.x) or `boards` (1.3.x), `chains/factory-info`, `find-miner` (each POST toggles the
  locate LED and answers `{"on": bool}`; a request body is ignored, as the spec declares none).
- `POST unlock {"pw": ...}` answers `{"token": ...}` (403 for a wrong password). The token goes in
  `Authorization: Bearer <token>`; the bare token is taken too (pyasic sends it so for everything but
  `system/*`). `settings` (GET and POST), `autotune/presets`, `mining/start|stop|pause|resume|restart`
  and `system/reboot` need it and answer 401 without it. The mining actions answer 200 with no body,
  as the spec says; `system/reboot` answers `{"after": 3}`.
- `POST settings` changes the web password (`password: {current, pw}`, refused when `current` is wrong; tokens
  already given stay valid) and merges `miner.pools` (a list of `{url, user, pass}`), `miner.overclock.preset`
  (a preset name from `autotune/presets`: watts, or `disabled` for the stock frequency) and
  `miner.cooling.mode` (`{"name": "manual", "param": percent}` or `{"name": "auto", "param": target
  temperature, 20..90 C}`, the bounds `model` gives) into the settings and answers `{"restart_required",
  "reboot_required"}`.

Port 4028 keeps the bmminer-compatible RPC (version, summary, stats, pools, devs; the replies of the
stock simulator), where `stats` names the model as VNish does, `Antminer S19 Pro (vnish 1.2.6)`, the
string pyasic reads the model from. No capture of VNish's RPC `version` was published: here it names
VNish and not the model, the only shape for which pyasic's RPC check for `VNISH` can fire (it tests for
`ANTMINER` first).

Reply shapes follow the spec's schemas; example values (`serial` "N/A", `uptime` "0:06", `platform`,
preset names such as "3250" with `pretty` "3250 watt ~ 110 TH") follow published VNish 1.2.6 replies.
Figures come from `self.state`, so controls show in later reads.
"""

from __future__ import annotations

import random
import secrets
from typing import Any

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, SimMiner, rpc_status
from asicfleet.sim.antminer import AntminerStockSim

VERSIONS = ("1.2.6", "1.2.7", "1.3.4")  # the releases whose API specification asic-rs publishes
BUILD_TIME = "2025-05-29 19:22:26+00:00"
MAX_FAN_RPM = 6000
PRESET_RATIOS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1)  # autotune presets, as fractions of the nameplate power
# model code, platform (control board) and stock frequency per simulated model
HARDWARE: dict[str, tuple[str, str, int]] = {
    "Antminer S19": ("s19", "xil", 650),
    "Antminer S19 Pro": ("s19pro", "xil", 675),
    "Antminer S19j Pro": ("s19jpro", "aml", 545),
    "Antminer S19 XP": ("s19xp", "cv", 500),
    "Antminer S21": ("s21", "cv", 490),
    "Antminer T21": ("t21", "cv", 480),
}
STOPPED_WATTS = 18  # control board and fans with the hashboards off
WEB_PAGE = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>AnthillOS</title>'
            '<meta name="description" content="AnthillOS miner web interface"></head>'
            '<body><div id="app"></div></body></html>')


def format_uptime(seconds: int) -> str:
    """As VNish writes `system.uptime`: `0:06` (hours:minutes), `3 days, 4:05`."""
    days, rest = divmod(seconds, 86400)
    clock = f"{rest // 3600}:{rest % 3600 // 60:02d}"
    if not days:
        return clock
    return f"{days} day{'s' if days != 1 else ''}, {clock}"


class VNishSim(AntminerStockSim):
    family = "vnish"
    make = "AntMiner"
    firmware = "VNish"
    models = tuple(HARDWARE)
    http_server_header = None
    default_username = "admin"  # VNish has no user name; the web password is `admin`
    default_password = "admin"

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.firmware_version = cls.default_firmware_version(rng)
        s.extra.update(
            hash_factor=s.hashrate_ths / model.nominal_ths,
            watt_factor=s.wattage / model.nominal_watts,
            preset=str(round(model.nominal_watts)),
            tokens=set(),
            stopped=False,
            find_miner=False,
            restarts=0,
            fan_target=60,  # the temperature automatic fan control holds, degrees C
        )
        assert isinstance(miner, VNishSim)
        miner._apply_preset(s.extra["preset"])
        return miner

    @property
    def hardware(self) -> tuple[str, str, int]:
        return HARDWARE[self.state.model.name]

    # ----- presets ----------------------------------------------------------------------------
    def presets(self) -> list[dict[str, Any]]:
        """`disabled` (stock frequency) and power presets around the nameplate, tuned once chosen."""
        model = self.state.model
        rows: list[dict[str, Any]] = [{"name": "disabled", "pretty": "Disabled", "status": "untuned",
                                       "modded_psu_required": False}]
        for ratio in PRESET_RATIOS:
            watts = round(model.nominal_watts * ratio)
            ths = round(model.nominal_ths * ratio ** (1 / 1.6))
            rows.append({"name": str(watts), "pretty": f"{watts} watt ~ {ths} TH", "status": "tuned",
                         "modded_psu_required": ratio > 1.0})
        return rows

    def _apply_preset(self, name: str) -> None:
        s, model = self.state, self.state.model
        ratio = 1.0 if name == "disabled" else int(name) / model.nominal_watts
        s.extra["preset"] = name
        s.hashrate_ths = round(model.nominal_ths * ratio ** (1 / 1.6) * s.extra["hash_factor"], 3)
        s.wattage = round(model.nominal_watts * ratio * s.extra["watt_factor"], 1)
        s.power_limit = float(model.nominal_watts if name == "disabled" else int(name))
        s.extra["base_ths"], s.extra["base_watts"] = s.hashrate_ths, s.wattage  # what the RPC replies scale

    def _sync_mining(self) -> None:
        self.state.mining = not self.state.extra["stopped"] and bool(self._pools())

    # ----- RPC (bmminer-compatible) -----------------------------------------------------------
    def _program_row(self) -> dict[str, Any]:
        return {**super()._program_row(), "Type": f"{self.model_name} (vnish {self.state.firmware_version})"}

    def _rpc_version(self) -> dict[str, Any]:
        v = self.state.firmware_version
        return {"STATUS": rpc_status(22, "CGMiner versions", f"vnish {v}"),
                "VERSION": [{"CGMiner": "4.11.1", "API": "3.7", "Miner": f"vnish {v}", "CompileTime": BUILD_TIME}],
                "id": 1}

    # ----- web --------------------------------------------------------------------------------
    def _authorised(self, request: HttpRequest) -> bool:
        header = request.headers.get("authorization", "").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        return bool(token) and token in self.state.extra["tokens"]

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/", "/index.html"):
            return HttpResponse.html(WEB_PAGE)
        if not path.startswith("/api/v1/"):
            return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")
        route = path[len("/api/v1/"):]
        key = f"{request.method} {route}"
        open_routes = {"GET info": self._info, "GET model": self._model, "GET status": self._status,
                       "GET summary": self._summary, "GET perf-summary": self._perf_summary,
                       "GET chains/factory-info": self._factory_info, "POST find-miner": self._find_miner,
                       "POST unlock": self._unlock, f"GET {self._boards_route}": self._boards}
        locked_routes = {"GET settings": self._settings, "POST settings": self._save_settings,
                         "GET autotune/presets": self._presets, "POST mining/start": self._start,
                         "POST mining/resume": self._start, "POST mining/stop": self._stop,
                         "POST mining/pause": self._stop, "POST mining/restart": self._mining_restart,
                         "POST system/reboot": self._reboot}
        if key in open_routes:
            return open_routes[key](request)
        if key in locked_routes:
            if not self._authorised(request):
                return HttpResponse(status=401, body=b"", content_type="text/plain")
            return locked_routes[key](request)
        return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")

    @property
    def _boards_route(self) -> str:
        """1.3 renamed `chains` to `boards`."""
        release = tuple(int(p) for p in self.state.firmware_version.split(".")[:2] if p.isdigit())
        return "boards" if release >= (1, 3) else "chains"

    @staticmethod
    def _no_content() -> HttpResponse:
        return HttpResponse(status=200, body=b"", content_type="text/plain")

    def _unlock(self, request: HttpRequest) -> HttpResponse:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("pw"), str):
            return HttpResponse.of_json({"err": "Json deserialize error: missing field `pw`"}, status=500)
        if self.auth_refused() or not secrets.compare_digest(body["pw"], self.state.password):
            return HttpResponse.of_json({"unlock_timeout": None}, status=403)
        token = secrets.token_urlsafe(24)[:32]
        self.state.extra["tokens"].add(token)
        return HttpResponse.of_json({"token": token})

    def _info(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        code, platform, _ = self.hardware
        return HttpResponse.of_json({
            "miner": self.model_name, "model": code, "fw_name": "Vnish", "fw_version": s.firmware_version,
            "build_uuid": "5b50805f-a372-4f07-bbc2-5020aa03321a", "build_name": "vnishnet", "platform": platform,
            "install_type": "nand", "build_time": BUILD_TIME, "algorithm": "sha256d", "hr_measure": "GH/s",
            "system": {
                "os": "GNU/Linux", "miner_name": code, "file_system_version": "", "mem_total": 233712,
                "mem_free": 173956, "mem_free_percent": 74, "mem_buf": 31928, "mem_buf_percent": 13,
                "network_status": {"mac": s.mac, "dhcp": True, "ip": s.ip, "netmask": "255.255.255.0",
                                   "gateway": "", "dns": [], "hostname": s.hostname},
                "uptime": format_uptime(s.uptime),
            },
            "serial": s.serial,
        })

    def _model(self, request: HttpRequest) -> HttpResponse:
        code, platform, frequency = self.hardware
        model = self.state.model
        return HttpResponse.of_json({
            "full_name": self.model_name, "model": code, "algorithm": "sha256d",
            "series": "x21" if code.endswith("21") else "x19", "platform": platform, "install_type": "nand",
            "hr_measure": "GH/s",
            "serial": self.state.serial,
            "chain": {"chips_per_chain": model.chips_per_board, "chips_per_domain": 2, "num_chains": model.boards,
                      "topology": {"chips": [], "num_cols": 0, "num_rows": 0}},
            "cooling": {"min_fan_pwm": 10, "min_target_temp": 20, "max_target_temp": 90,
                        "fan_min_count": {"min": 1, "max": model.fans, "default": model.fans}},
            "overclock": {"max_voltage": 1535, "min_voltage": 1200, "default_voltage": 1380, "max_freq": 1000,
                          "min_freq": 50, "default_freq": frequency, "warn_freq": 850,
                          "max_voltage_stock_psu": 1500, "max_power_limit": round(model.nominal_watts * 1.2),
                          "power_metering": True},
        })

    def _miner_status(self) -> dict[str, Any]:
        s = self.state
        if s.extra["stopped"]:
            return {"miner_state": "stopped", "miner_state_time": 0, "throttled": 100}
        if not self._pools():
            return {"miner_state": "failure", "miner_state_time": 0, "description": "No pools configured",
                    "failure_code": 1003, "throttled": 100}
        return {"miner_state": "mining", "miner_state_time": s.uptime, "throttled": 100}

    def _status(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.of_json({**self._miner_status(), "find_miner": self.state.extra["find_miner"],
                                     "restart_required": False, "reboot_required": False,
                                     "unlocked": self._authorised(request), "warranty": "not_provided"})

    def _chain_rows(self) -> list[dict[str, Any]]:
        s, model = self.state, self.state.model
        frequency = self.hardware[2] if s.mining else 0
        rates = self._board_rates_ghs()
        rows = []
        for i in range(model.boards):
            pcb, chip, _ = self._board_temps(i)
            ideal = round(model.nominal_ths * 1000 / model.boards, 2)
            rows.append({
                "id": i + 1, "frequency": float(frequency), "voltage": 13800 if s.mining else 0,
                "power_consumption": round(s.wattage / model.boards) if s.mining else 0,
                "hashrate_ideal": ideal, "hashrate_rt": rates[i],
                "hashrate_percentage": round(rates[i] / ideal * 100, 2) if ideal else 0.0,
                "hr_error": 0.0, "hw_errors": s.extra["hardware_errors"][i],
                "pcb_temp": {"min": min(pcb), "max": max(pcb)}, "chip_temp": {"min": min(chip), "max": max(chip)},
                "chip_statuses": {"red": 0, "orange": 0, "grey": 0 if s.mining else model.chips_per_board},
                "status": {"state": "mining" if s.mining else "stopped"},
            })
        return rows

    def _summary(self, request: HttpRequest) -> HttpResponse:
        s, model = self.state, self.state.model
        total = self._total_ghs()
        watts = round(s.wattage) if s.mining else STOPPED_WATTS
        efficiency = round(watts / (total / 1000), 1) if total else 0.0
        pools = [{"id": i, "url": p.url, "pool_type": "UserPool", "user": p.username,
                  "status": ("active" if i == 0 else "working") if s.mining else "offline", "asic_boost": True,
                  "diff": "524K" if i == 0 else "", "accepted": s.accepted if i == 0 else 0,
                  "rejected": s.rejected if i == 0 else 0, "stale": 0, "ls_diff": 524288.0 if i == 0 else 0.0,
                  "ls_time": "0:00:03" if i == 0 else "0", "diffa": float(s.accepted * 524288) if i == 0 else 0.0,
                  "ping": 40} for i, p in enumerate(self._pools())]
        pools.append({"id": len(pools), "url": "DevFee", "pool_type": "DevFee", "user": "DevFee",
                      "status": "working" if s.mining else "offline", "asic_boost": False, "diff": "",
                      "accepted": 0, "rejected": 0, "stale": 0, "ls_diff": 0.0, "ls_time": "0", "diffa": 0.0,
                      "ping": 0})
        chains = self._chain_rows()
        mode = self._fan_mode()
        duty = s.fan.fan_speed if s.fan.mode == "manual" and s.fan.fan_speed is not None else \
            round(sum(s.fan_rpms) / max(1, len(s.fan_rpms)) / MAX_FAN_RPM * 100)
        return HttpResponse.of_json({"miner": {
            "miner_status": self._miner_status(),
            "miner_type": f"{self.model_name} (Vnish {s.firmware_version})",
            "hr_stock": float(model.nominal_ths * 1000), "average_hashrate": round(total / 1000, 3),
            "instant_hashrate": round(total / 1000, 3), "hr_realtime": total, "hr_average": total,
            "hr_nominal": round(s.hashrate_ths * 1000 / s.extra["hash_factor"], 2),
            "pcb_temp": {"min": min(c["pcb_temp"]["min"] for c in chains), "max": max(c["pcb_temp"]["max"]
                                                                                   for c in chains)},
            "chip_temp": {"min": min(c["chip_temp"]["min"] for c in chains), "max": max(c["chip_temp"]["max"]
                                                                                     for c in chains)},
            "power_consumption": watts, "power_usage": round(efficiency), "power_efficiency": efficiency,
            "hw_errors_percent": 0.0, "hr_error": 0.0, "hw_errors": sum(s.extra["hardware_errors"]),
            "devfee_percent": 2.8, "devfee": round(total * 0.028, 2), "pools": pools,
            "cooling": {"fan_num": len(s.fan_rpms), "fan_duty": duty, "settings": {"mode": mode},
                        "fans": [{"id": i, "rpm": rpm, "status": "ok", "max_rpm": MAX_FAN_RPM}
                                 for i, rpm in enumerate(s.fan_rpms)]},
            "chains": chains, "found_blocks": 0, "best_share": 12904207043, "restart_count": s.extra["restarts"],
            "psu": {"psu_power_metering": True, "temps": None},
        }})

    def _perf_summary(self, request: HttpRequest) -> HttpResponse:
        preset = next(p for p in self.presets() if p["name"] == self.state.extra["preset"])
        return HttpResponse.of_json({"current_preset": {**preset, "globals": {"volt": 1380, "freq": self.hardware[2]}},
                                     "preset_switcher": {"enabled": False, "top_preset": None, "decrease_temp": 75,
                                                         "rise_temp": 55, "check_time": 300,
                                                         "autochange_top_preset": False, "ignore_fan_speed": False,
                                                         "min_preset": None}})

    def _factory_info(self, request: HttpRequest) -> HttpResponse:
        model = self.state.model
        board_model = self.build_info.subtype.split("_")[-1]  # the hashboard type, BHB42601...
        per_board = round(model.nominal_ths * 1000 / model.boards, 2)
        return HttpResponse.of_json({"hr_stock": float(model.nominal_ths * 1000), "has_pics": True,
                                     "psu_model": "APW12", "psu_serial": None,
                                     "chains": [{"id": i + 1, "board_model": board_model, "serial": serial,
                                                 "chip_bin": 1, "freq": self.hardware[2], "volt": 1380,
                                                 "hashrate": per_board}
                                                for i, serial in enumerate(self.state.extra["board_serials"])]})

    def _boards(self, request: HttpRequest) -> HttpResponse:
        s, model = self.state, self.state.model
        rates = self._board_rates_ghs()
        frequency = self.hardware[2] if s.mining else 0
        rows = []
        for i in range(model.boards):
            per_chip = round(rates[i] / model.chips_per_board, 3)
            rows.append({
                "id": i + 1, "freq": float(frequency), "hr_nominal": round(model.nominal_ths * 1000 / model.boards, 2),
                "hr_realtime": rates[i], "sensors": [],
                "status": {"state": "mining" if s.mining else "stopped"},
                "chips": [{"id": c, "freq": frequency, "volt": 345, "temp": float(self._board_temps(i)[1][0]),
                           "hr": per_chip, "errs": 0, "grade": "grey", "throttled": False}
                          for c in range(model.chips_per_board)],
            })
        return HttpResponse.of_json(rows)

    def _find_miner(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        s.extra["find_miner"] = not s.extra["find_miner"]
        s.fault_light = s.extra["find_miner"]
        return HttpResponse.of_json({"on": s.extra["find_miner"]})

    def _fan_mode(self) -> dict[str, Any]:
        fan = self.state.fan
        if fan.mode == "manual" and fan.fan_speed is not None:
            return {"name": "manual", "param": fan.fan_speed}
        return {"name": "auto", "param": self.state.extra["fan_target"]}

    def _settings_view(self) -> dict[str, Any]:
        s = self.state
        mode = self._fan_mode()
        return {
            "miner": {
                "pools": [{"url": p.url, "user": p.username, "pass": p.password} for p in self._pools()],
                "overclock": {"preset": s.extra["preset"], "modded_psu": False, "globals": {"freq": self.hardware[2],
                                                                                             "volt": 1380},
                              "chains": None, "preset_switcher": {"enabled": False}},
                "cooling": {"mode": mode, "fan_min_count": s.model.fans, "fan_min_duty": 10, "fan_max_duty": 100},
                "misc": {"restart_temp": 90, "quiet_mode": False},
            },
            "network": {"dhcp": True, "dnsservers": [], "gateway": "", "hostname": s.hostname, "ipaddress": s.ip,
                        "netmask": "255.255.255.0"},
            "regional": {"timezone": {"current": "GMT"}},
            "ui": {"theme": "auto", "locale": "en"},
        }

    def _settings(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.of_json(self._settings_view())

    def _save_settings(self, request: HttpRequest) -> HttpResponse:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("miner", {}), dict):
            return HttpResponse.of_json({"err": "Json deserialize error: expected an object"}, status=500)
        s = self.state
        password = body.get("password")
        if password is not None:
            if not isinstance(password, dict) or not isinstance(password.get("pw"), str) or not password["pw"]:
                return HttpResponse.of_json({"err": "Json deserialize error: password needs `current` and `pw`"},
                                            status=500)
            if not secrets.compare_digest(str(password.get("current", "")), s.password):
                return HttpResponse.of_json({"err": "Wrong current password"}, status=500)
            s.password = password["pw"]
        miner = body.get("miner", {})
        if "pools" in miner:
            try:
                pools = [Pool(url=str(p["url"]).strip(), username=str(p.get("user") or ""),
                              password=str(p.get("pass") or "x"))
                         for p in miner["pools"] or [] if isinstance(p, dict) and str(p.get("url", "")).strip()]
            except (ValueError, KeyError, TypeError):
                return HttpResponse.of_json({"err": "Invalid pool settings"}, status=500)
            s.pools = [PoolGroup(name="default", quota=1, pools=pools[:3])] if pools else []
        overclock = miner.get("overclock")
        if isinstance(overclock, dict) and "preset" in overclock:
            name = str(overclock["preset"])
            if name not in {p["name"] for p in self.presets()}:
                return HttpResponse.of_json({"err": f"Unknown preset {name}"}, status=500)
            self._apply_preset(name)
        cooling = miner.get("cooling")
        if isinstance(cooling, dict) and isinstance(cooling.get("mode"), dict):
            mode = cooling["mode"]
            if mode.get("name") == "manual" and isinstance(mode.get("param"), int) and 0 <= mode["param"] <= 100:
                s.fan = FanConfig.manual(mode["param"])
                s.fan_rpms = [round(MAX_FAN_RPM * mode["param"] / 100 / 10) * 10 for _ in s.fan_rpms]
            elif mode.get("name") == "auto" and isinstance(mode.get("param"), int) and 20 <= mode["param"] <= 90:
                s.fan = FanConfig.auto(target_temp=mode["param"])
                s.extra["fan_target"] = mode["param"]
                s.fan_rpms = list(s.extra["auto_fan_rpms"])
            else:
                return HttpResponse.of_json({"err": "Invalid cooling mode"}, status=500)
        self._sync_mining()
        return HttpResponse.of_json({"restart_required": False, "reboot_required": False})

    def _presets(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.of_json(self.presets())

    def _start(self, request: HttpRequest) -> HttpResponse:
        self.state.extra["stopped"] = False
        self._sync_mining()
        return self._no_content()

    def _stop(self, request: HttpRequest) -> HttpResponse:
        self.state.extra["stopped"] = True
        self.state.mining = False
        return self._no_content()

    def _mining_restart(self, request: HttpRequest) -> HttpResponse:
        self.state.extra["restarts"] += 1
        self.state.extra["stopped"] = False
        self._sync_mining()
        return self._no_content()

    def _reboot(self, request: HttpRequest) -> HttpResponse:
        self.state.extra["tokens"].clear()  # a reboot forgets every token
        self.restart()
        return HttpResponse.of_json({"after": 3})

    def inventory(self) -> dict[str, Any]:
        return {**super().inventory(), "preset": self.state.extra["preset"]}

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return rng.choice(VERSIONS)


