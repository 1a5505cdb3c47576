"""Simulated blackMiner firmware: Hammer D10 (`hammer`) and VolcMiner D1 (`volcminer`), one firmware, two makes.

Port 80: lighttpd with digest auth under the realm "blackMiner Configuration" in front of every path, the
stock Antminer CGIs (`get_system_info` in blackMiner's longer shape, `get_network_info`,
`get_miner_conf` with the `bitmain-*` keys, `set_miner_conf`, `summary`, `get_blink_status`, `blink`,
`reboot`; `set_miner_conf` also takes the VolcMiner web form's pool slots). Port 8359: the ccminer RPC
(`version`, `summary`, `stats`, `pools`; STATUS Description
"ccminer 2.3.3"), rates in MH/s as strings, `stats` in the Antminer chain layout without
`total_rateideal`. Nothing listens on 4028. The shapes follow a real Hammer D10 (filesystem 2022-11-11,
miner 2023-05-28) published with pyasic and VolcMiner D1 replies published with asic-rs. The makes differ
in the model string, the default password (Hammer root/root, VolcMiner root/ltc@dog) and the build dates.
"""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

import orjson

from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._cgi import AntminerLikeSim
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner, rpc_error
from asicfleet.sim.antminer import _acs, _json

RPC_PORT = 8359
DESCRIPTION = "ccminer 2.3.3"


class BlackMinerSim(AntminerLikeSim):
    """What both makes serve; a subclass names the make, its model string, builds and login (not registered)."""

    realm = "blackMiner Configuration"
    services: ClassVar[tuple[Service, ...]] = (Service(RPC_PORT, "rpc"), Service(80, "http"))
    filesystem_version: ClassVar[str]  # get_system_info system_filesystem_version: the build date
    compile_time: ClassVar[str]  # RPC VERSION CompileTime
    miner_version: ClassVar[str]  # RPC VERSION Miner, get_system_info bb_hwv
    kernel: ClassVar[str]
    frequency: ClassVar[int]  # MHz, stats `frequency`

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        miner.state.firmware_version = cls.filesystem_version
        miner.state.hostname = cls.make
        return miner

    def _board_rates_mhs(self) -> list[float]:
        return [round(ths * 1_000_000, 4) for ths in self.state.board_hashrates()]

    # ----- RPC on 8359 -------------------------------------------------------------------------
    def _status(self, code: int, message: str) -> list[dict[str, Any]]:
        return [{"STATUS": "S", "When": int(time.time()), "Code": code, "Msg": message, "Description": DESCRIPTION}]

    def _program(self) -> dict[str, Any]:
        return {"CGMiner": "2.3.3", "Miner": self.miner_version, "CompileTime": self.compile_time,
                "Type": self.model_name}

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        handlers = {"version": self._version, "summary": self._summary_rpc, "stats": self._stats_rpc,
                    "pools": self._rpc_pools}
        handler = handlers.get(command)
        if handler is None:
            reply = rpc_error(14, "Invalid command")
            reply["STATUS"][0]["Description"] = DESCRIPTION
            return reply
        return handler()

    def _version(self) -> dict[str, Any]:
        return {"STATUS": self._status(22, "CGMiner versions"),
                "VERSION": [{**self._program(), "API": "3.1"}], "id": 1}

    def _summary_rpc(self) -> dict[str, Any]:
        s = self.state
        total = round(sum(self._board_rates_mhs()), 4)
        return {"STATUS": self._status(11, "Summary"), "SUMMARY": [{
            "Elapsed": s.uptime, "MHS 5s": f"{total:.4f}", "MHS av": f"{total:.4f}", "Found Blocks": 0,
            "Getworks": s.accepted // 20 + 3, "Accepted": f"{s.accepted:.4f}", "Rejected": f"{s.rejected:.4f}",
            "Hardware Errors": sum(s.extra["hardware_errors"]), "Utility": round(s.accepted / max(1, s.uptime) * 60, 2),
            "Discarded": s.accepted * 4, "Stale": 0, "Get Failures": 0, "Local Work": s.accepted * 30,
            "Remote Failures": 0, "Network Blocks": 3323, "Total MH": round(total * s.uptime, 4),
            "Work Utility": round(total * 920, 2), "Difficulty Accepted": float(s.accepted * 65536),
            "Difficulty Rejected": float(s.rejected * 65536), "Difficulty Stale": 0.0, "Best Share": 80831,
            "Device Hardware%": 0.0001, "Device Rejected%": 0.0, "Pool Rejected%": 0.0, "Pool Stale%": 0.0,
            "Last getwork": int(time.time()),
        }], "id": 1}

    def _stats_rpc(self) -> dict[str, Any]:
        s, model = self.state, self.state.model
        rates = self._board_rates_mhs()
        total = round(sum(rates), 4)
        row: dict[str, Any] = {
            "STATS": 0, "ID": "A30", "Elapsed": s.uptime, "Calls": 0, "Wait": 0.0, "Max": 0.0, "Min": 99999999.0,
            "MHS 5s": f"{total:.4f}", "MHS av": f"{total:.4f}", "miner_count": model.boards,
            "frequency": str(self.frequency), "fan_num": len(s.fan_rpms),
        }
        for i, rpm in enumerate(s.fan_rpms, start=1):
            row[f"fan{i}"] = rpm
        slots = max(4, model.boards)
        row["temp_num"] = model.boards * 4
        for n in range(1, slots + 1):
            row[f"temp{n}"] = round(s.board_temps[n - 1]) if n <= model.boards and s.mining else 0
        row["temp_max"] = max((round(t) for t in s.board_temps), default=0)
        row["Device Hardware%"] = 0.0
        row["no_matching_work"] = sum(s.extra["hardware_errors"])
        for n in range(1, slots + 1):
            present = n <= model.boards
            row[f"chain_acn{n}"] = model.chips_per_board if present else 0
            row[f"chain_acs{n}"] = _acs(model.chips_per_board) if present else ""
            row[f"chain_hw{n}"] = s.extra["hardware_errors"][n - 1] if present else 0
            row[f"chain_rate{n}"] = f"{rates[n - 1]:.4f}" if present else ""
        return {"STATUS": self._status(70, "CGMiner stats"), "STATS": [self._program(), row], "id": 1}

    # ----- web ---------------------------------------------------------------------------------
    def _system_info(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        return _json({
            "minertype": self.model_name, "nettype": "DHCP", "netdevice": "eth0", "macaddr": s.mac,
            "hostname": s.hostname, "ipaddress": s.ip, "netmask": "255.255.255.0", "gateway": "", "dnsservers": "",
            "curtime": time.strftime("%H:%M:%S", time.gmtime()), "uptime": str(s.uptime),
            "loadaverage": "1.06, 1.36, 1.48", "mem_total": "251180", "mem_used": "64392", "mem_free": "186788",
            "mem_buffers": "0", "mem_cached": "0", "system_mode": "GNU/Linux", "bb_hwv": self.miner_version,
            "system_kernel_version": self.kernel, "system_filesystem_version": s.firmware_version,
            "cgminer_version": "2.3.3",
        })

    def _set_conf(self, request: HttpRequest) -> HttpResponse:
        """The Antminer JSON body; or the VolcMiner web form (`_bb_pool1url`, `_bb_pool1user`, `_bb_pool1pw`
        ... as asic-rs posts it), whose pool slots are taken (its other `_bb_*` fields are not simulated)."""
        form = self._body(request)
        if "_bb_pool1url" not in form:
            return self._set_miner_conf(request)
        pools = [{"url": str(form.get(f"_bb_pool{n}url", "")), "user": str(form.get(f"_bb_pool{n}user", "")),
                  "pass": str(form.get(f"_bb_pool{n}pw", ""))} for n in range(1, 4)]
        as_json = HttpRequest(method=request.method, path=request.path, query=request.query,
                              headers={**request.headers, "content-type": "application/json"},
                              body=orjson.dumps({"pools": pools}), port=request.port)
        return self._set_miner_conf(as_json)

    cgi_handlers = {
        "get_system_info": _system_info, "get_network_info": AntminerLikeSim._network_info,
        "get_miner_conf": AntminerLikeSim._miner_conf, "set_miner_conf": _set_conf,
        "summary": AntminerLikeSim._web_summary, "get_blink_status": AntminerLikeSim._blink_status,
        "blink": AntminerLikeSim._blink, "reboot": AntminerLikeSim._reboot,
    }


class HammerSim(BlackMinerSim):
    family = "hammer"
    make = "Hammer"
    firmware = "Stock"
    models = ("Hammer D10",)
    filesystem_version = "2022-11-11 13-46-30 CST"
    compile_time = "2023-05-28 17-20-35 CST"
    miner_version = "2.0.2.2"
    kernel = "Linux 3.8.13 #22 SMP Tue Dec 2 15:26:11 CST 2014"
    frequency = 810


class VolcMinerSim(BlackMinerSim):
    family = "volcminer"
    make = "VolcMiner"
    firmware = "Stock"
    models = ("VolcMiner D1",)
    default_password = "ltc@dog"
    filesystem_version = "2025-02-18 15-51-04 CST"
    compile_time = "2025-02-18 15-51-04 CST"
    miner_version = "1.3.0.8"
    kernel = "Linux 4.9.113 #1 SMP PREEMPT Tue Feb 18 15:40:12 CST 2025"
    frequency = 800
