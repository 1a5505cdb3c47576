"""Simulated Canaan AvalonMiner A-series (1246, 1366, A1466) on stock firmware (Canaan's CGMiner 4.11 fork).

Replies take the shapes of the captured replies in ../shared/fixtures/asic-rs/responses/avalonminer:
`estats`/`stats` hold the device figures as one `MM ID0` string of bracketed fields laid out as the
A1246 capture (`avalon_a_stats.json`); `summary`, `devs`, `pools`, `version`... follow their captures.
Controls follow the firmware's API source (api.c of Canaan's fork): `ascset` answers `ASC 0 set OK`
(code 119) or `ASC 0 set info: ...` (118), `setpool` checks the web login and only takes effect after
a reboot ("Please reboot miner to make config work"), joined commands refuse non-joinable parts.

Assumptions where no capture or source says more (documented, kept small):
- `worklevel,set,N`: N up to 2 is a level index (pyasic sends levels); a larger N is a power cap in
  watts written to `MPO` (pyasic-rs sends a power with its unit, "3\u00a0kW", understood as 3000 W);
- work modes 0/1/2 run at 85 % / 100 % / 110 % of the normal-mode hash rate and power;
- `restart` answers `{"STATUS": "RESTART"}` (what pyasic tests for) and reboots; Canaan's newer api.c
  has no `restart`, so the firmware's own reboot is `ascset 0,reboot,0`;
- the A1466 answers softoff with `ASC 0 set OK` and softon with no reply (asic-rs, verified on a live
  A1466); the others as the Avalon Q capture (`ASC 0 set info: success softoff:<time>`).
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from asicfleet.config import Pool, PoolGroup
from asicfleet.sim._core import (
    HttpRequest,
    HttpResponse,
    MinerState,
    Service,
    SimMiner,
)

_DESCRIPTION = "cgminer 4.11.1"
_PSU_EFFICIENCY = 0.91  # output W / input W, as PS[4] / PS[6] in the A1246 capture
_OUTPUT_VOLTS = 13.16  # PS[2] / 100 in the A1246 capture
_IDLE_WATTS_SHARE = 0.04  # soft-off draw, as PS[6] of the idle Avalon Q capture over its rating
_AUTO_FAN_DUTY = 72  # FanR in the A1246 capture
_MODE_FACTORS = {0: 0.85, 1: 1.0, 2: 1.1}
_JOINABLE = frozenset({"version", "config", "devs", "edevs", "pools", "summary", "devdetails", "stats", "estats",
                       "coin", "lcd"})
_ASCSET_HELP = ("help|led|voltage|fan-spd|target-temp|lcd|hash-sn-read|hash-sn-write|volt-tuning|workmode|"
                "worklevel|work_mode_lvl|reboot|softon|softoff|filter-clean|facopts|faclock|activate|"
                "solo-allowed|frequency|loop|password|qr_auth|time|")


@dataclass(frozen=True)
class AvalonVariant:
    """What differs between A-series models in their replies."""

    model_code: str  # VERSION.MODEL, e.g. "1246-83"
    hwtype: str
    swtype: str
    firmware: str
    core: str  # chip name in MM ID0 Core[]
    frequencies: tuple[int, int, int, int]  # the four PLL steps per board (SF/ATABD)
    # a live A1466 answers softoff with a plain `ASC 0 set OK` and softon by closing the connection
    # (asic-rs, "Verified against a live AvalonMiner 1466"); the Avalon Q capture shows `success ...`
    a1466_softoff_softon: bool = False


_VARIANTS: dict[str, AvalonVariant] = {
    "Avalon 1246": AvalonVariant("1246-83", "MM3v2_X3", "MM314", "21042001_4ec6bb0_61407fa", "A3201",
                                 (472, 492, 512, 532)),
    "Avalon 1366": AvalonVariant("1366-109", "MM4v1_X3", "MM315", "22110101_5f6e8c1_a3b91d2", "A3205",
                                 (488, 508, 528, 548)),
    "Avalon A1466": AvalonVariant("1466-116", "MM4v2_X3", "MM316", "24102401_25462b2_9ddf522", "A3206",
                                  (496, 516, 536, 556), a1466_softoff_softon=True),
}


def _status(severity: str, code: int, message: str) -> list[dict[str, Any]]:
    return [{"STATUS": severity, "When": int(time.time()), "Code": code, "Msg": message,
             "Description": _DESCRIPTION}]


def _ok(code: int, message: str, **body: Any) -> dict[str, Any]:
    return {"STATUS": _status("S", code, message), **body, "id": 1}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"STATUS": _status("E", code, message), "id": 1}


class AvalonSim(SimMiner):
    family: ClassVar[str] = "avalon"
    make: ClassVar[str] = "AvalonMiner"
    firmware: ClassVar[str] = "Stock"
    models: ClassVar[tuple[str, ...]] = tuple(_VARIANTS)
    services: ClassVar[tuple[Service, ...]] = (Service(4028, "rpc"), Service(80, "http"))
    default_username: ClassVar[str] = "root"
    default_password: ClassVar[str] = "root"

    def __init__(self, state: MinerState, rng: random.Random) -> None:
        super().__init__(state, rng)
        self.variant = _VARIANTS.get(state.model.name, _VARIANTS["Avalon 1246"])
        state.firmware_version = self.variant.firmware
        state.serial = "020100" + "".join(rng.choice("0123456789abcdef") for _ in range(10))  # DNA
        self.base_ths = state.hashrate_ths  # normal work mode, no power cap
        self.base_watts = state.wattage
        self.base_fan_rpms = list(state.fan_rpms)
        self.work_mode = 1
        self.work_level = 0
        self.fan_duty: int | None = None  # None: automatic
        self.target_temp = 65
        self.pool_slots: list[tuple[str, str, str]] = [
            (p.url, p.username, p.password) for p in state.pools[0].pools][:3]
        self.pending_slots: list[tuple[str, str, str]] | None = None
        self.soft_off_at: int | None = None
        self.soft_on_at: int | None = None
        chips = state.model.chips_per_board
        self.chip_temp_offsets = [[rng.randint(-5, 7) for _ in range(chips)] for _ in range(state.model.boards)]
        self.chip_millivolts = [[rng.randint(295, 318) for _ in range(chips)] for _ in range(state.model.boards)]
        self.chip_work = [[rng.randint(540, 700) for _ in range(chips)] for _ in range(state.model.boards)]
        self.hardware_errors = [rng.randint(300, 1100) for _ in range(state.model.boards)]
        self.local_work = rng.randint(10_000_000, 30_000_000)
        self._apply_power()

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return _VARIANTS["Avalon 1246"].firmware

    # ----- state ------------------------------------------------------------------------------
    def _apply_power(self) -> None:
        """Hash rate and draw follow the work mode, then the power cap (MPO limits PSU output)."""
        factor = _MODE_FACTORS.get(self.work_mode, 1.0)
        ths, watts = self.base_ths * factor, self.base_watts * factor
        cap = self.state.power_limit
        if cap > 0 and watts * _PSU_EFFICIENCY > cap:
            scale = cap / (watts * _PSU_EFFICIENCY)
            ths, watts = ths * scale, watts * scale
        self.state.hashrate_ths = round(ths, 3)
        self.state.wattage = round(watts, 1)

    def _apply_schedule(self) -> None:
        """Soft-off/on take effect at the unix time they were scheduled for."""
        now = time.time()
        if self.soft_off_at is not None and now >= self.soft_off_at:
            self.state.mining, self.soft_off_at = False, None
        if self.soft_on_at is not None and now >= self.soft_on_at:
            self.state.mining, self.soft_on_at = True, None

    def _fan_rpms(self) -> list[int]:
        if not self.state.mining:
            return [0 for _ in self.base_fan_rpms]
        if self.fan_duty is None:
            return list(self.base_fan_rpms)
        return [round(rpm * self.fan_duty / _AUTO_FAN_DUTY) for rpm in self.base_fan_rpms]

    def restart(self) -> None:
        """A reboot: pending pool slots take effect, soft-off and the locate light are forgotten."""
        if self.pending_slots is not None:
            self.pool_slots, self.pending_slots = self.pending_slots, None
            pools = []
            for url, user, password in self.pool_slots:
                try:
                    pools.append(Pool(url=url, username=user, password=password))
                except ValueError:
                    continue
            if pools:
                self.state.pools = [PoolGroup(name="default", quota=1, pools=pools)]
        self.state.mining, self.soft_off_at, self.soft_on_at = True, None, None
        self.state.fault_light = False
        super().restart()

    # ----- RPC ----------------------------------------------------------------------------------
    def rpc_invalid_request(self) -> Any:
        return _error(23, "Invalid JSON")

    def rpc_join(self, parts: list[str], parameter: Any, port: int) -> dict[str, Any]:
        """CGMiner's join, as Canaan's API does it: each command once, no parameter, writes refused."""
        joined: dict[str, Any] = {}
        for part in parts:
            if not part or part in joined:
                continue
            self.count(f"{port}:{part}")
            if part not in _JOINABLE and part in self._commands():
                joined[part] = [_error(45, f"Access denied to '{part}' command")]
            else:
                joined[part] = [self.handle_rpc(part, None, port)]
        joined["id"] = 1
        return joined

    def _commands(self) -> set[str]:
        return {*_JOINABLE, "ascset", "setpool", "check", "restart", "switchpool", "enablepool", "disablepool",
                "poolpriority"}

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        self._apply_schedule()
        handlers = {
            "version": self._version, "summary": self._summary, "devs": self._devs, "edevs": self._devs,
            "pools": self._pools, "stats": lambda: self._stats(with_pools=True),
            "estats": lambda: self._stats(with_pools=False), "devdetails": self._devdetails,
            "config": self._config, "coin": self._coin, "lcd": self._lcd,
        }
        if command in handlers:
            return handlers[command]()
        if command == "check":
            known = str(parameter or "") in self._commands()
            flag = "Y" if known else "N"
            return _ok(72, "Check command", CHECK=[{"Exists": flag, "Access": flag}])
        if command == "ascset":
            return self._ascset(str(parameter) if parameter is not None else "")
        if command == "setpool":
            return self._setpool(str(parameter) if parameter is not None else "")
        if command == "restart":
            self.restart()
            return {"STATUS": "RESTART"}
        return _error(14, "Invalid command")

    # ----- reads --------------------------------------------------------------------------------
    def _version(self) -> dict[str, Any]:
        s, v = self.state, self.variant
        return _ok(22, "CGMiner versions", VERSION=[{
            "CGMiner": "4.11.1", "API": "3.7", "STM8": "20.08.01", "PROD": f"AvalonMiner {v.model_code}",
            "MODEL": v.model_code, "HWTYPE": v.hwtype, "SWTYPE": v.swtype, "VERSION": s.firmware_version,
            "LOADER": "d0d779de.00", "DNA": s.serial, "MAC": s.mac.replace(":", "").lower(), "UPAPI": "2",
        }])

    def _mhs(self) -> float:
        return round(self.state.live_hashrate_ths * 1_000_000, 2)

    def _summary(self) -> dict[str, Any]:
        s, mhs, elapsed = self.state, self._mhs(), self.state.uptime
        diff_accepted = float(s.accepted * 65536)
        return _ok(11, "Summary", SUMMARY=[{
            "Elapsed": elapsed, "MHS av": mhs, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 15m": mhs,
            "Found Blocks": 0, "Getworks": max(1, elapsed // 56), "Accepted": s.accepted, "Rejected": s.rejected,
            "Hardware Errors": sum(self.hardware_errors), "Utility": round(s.accepted / max(1, elapsed) * 60, 2),
            "Discarded": 0, "Stale": 0, "Get Failures": 0, "Local Work": self.local_work, "Remote Failures": 0,
            "Network Blocks": max(1, elapsed // 600), "Total MH": round(mhs * elapsed, 1),
            "Work Utility": round(s.live_hashrate_ths * 1e12 / 2**32 * 60 / 1e6, 2),
            "Difficulty Accepted": diff_accepted, "Difficulty Rejected": float(s.rejected * 65536),
            "Difficulty Stale": 0.0, "Best Share": 354914572, "Device Hardware%": 0.0,
            "Device Rejected%": round(100 * s.rejected / max(1, s.accepted + s.rejected), 4),
            "Pool Rejected%": round(100 * s.rejected / max(1, s.accepted + s.rejected), 4), "Pool Stale%": 0.0,
            "Last getwork": int(time.time()),
        }])

    def _devs(self) -> dict[str, Any]:
        s, mhs = self.state, self._mhs()
        return _ok(9, "1 ASC(s)", DEVS=[{
            "ASC": 0, "Name": "AVA10", "ID": 0, "Enabled": "Y", "Status": "Alive", "Temperature": 0.0,
            "MHS av": mhs, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 15m": mhs,
            "Accepted": s.accepted, "Rejected": s.rejected, "Hardware Errors": sum(self.hardware_errors),
            "Utility": round(s.accepted / max(1, s.uptime) * 60, 2), "Last Share Pool": 0,
            "Last Share Time": int(time.time()) - 3, "Total MH": round(mhs * s.uptime, 1),
            "Diff1 Work": s.accepted * 65536, "Difficulty Accepted": float(s.accepted * 65536),
            "Difficulty Rejected": float(s.rejected * 65536), "Last Share Difficulty": 65536.0,
            "Last Valid Work": int(time.time()) - 1, "Device Hardware%": 0.0,
            "Device Rejected%": round(100 * s.rejected / max(1, s.accepted + s.rejected), 4),
            "Device Elapsed": s.uptime,
        }])

    def _pools(self) -> dict[str, Any]:
        s = self.state
        pools = []
        for index, (url, user, password) in enumerate(self.pool_slots):
            first = index == 0
            pools.append({
                "POOL": index, "URL": url, "Status": "Alive", "Priority": index, "Quota": 1, "Long Poll": "N",
                "Getworks": max(1, s.uptime // 56) if first else 0, "Accepted": s.accepted if first else 0,
                "Rejected": s.rejected if first else 0, "Works": s.accepted * 3 if first else 0, "Discarded": 0,
                "Stale": 0, "Get Failures": 0, "Remote Failures": 0, "User": user, "Password": password,
                "Last Share Time": int(time.time()) - 3 if first else 0, "Diff1 Shares": s.accepted * 65536,
                "Proxy Type": "", "Proxy": "", "Difficulty Accepted": float(s.accepted * 65536 if first else 0),
                "Difficulty Rejected": float(s.rejected * 65536 if first else 0), "Difficulty Stale": 0.0,
                "Last Share Difficulty": 65536.0 if first else 0.0, "Work Difficulty": 65536.0 if first else 0.0,
                "Has Stratum": True, "Stratum Active": first and s.mining, "Stratum URL": url,
                "Stratum Difficulty": 65536.0 if first else 0.0, "Has Vmask": True, "Has GBT": False,
                "Best Share": 354914572 if first else 0, "Pool Rejected%": 0.0, "Pool Stale%": 0.0,
                "Bad Work": 0, "Current Block Height": 907089, "Current Block Version": 536870912,
            })
        return _ok(7, f"{len(pools)} Pool(s)", POOLS=pools)

    def _mm_string(self) -> str:
        """The `MM ID0` field string, in the A1246 capture's order and number formats."""
        s, v = self.state, self.variant
        boards, mining = s.model.boards, s.mining
        rates = [r * 1000 for r in s.board_hashrates()]  # GH/s
        fans = self._fan_rpms()
        temps = [[round(s.board_temps[b] + off) if mining else 0 for off in self.chip_temp_offsets[b]]
                 for b in range(boards)]
        chip_max = [max(t) for t in temps]
        chip_avg = [round(sum(t) / len(t)) for t in temps]
        input_watts = round(s.wattage) if mining else round(s.wattage * _IDLE_WATTS_SHARE)
        output_watts = round(s.wattage * _PSU_EFFICIENCY) if mining else 0
        amps = round(output_watts / _OUTPUT_VOLTS)
        volts = round(_OUTPUT_VOLTS * 100) if mining else 4
        expected_ghs = self.base_ths * _MODE_FACTORS.get(self.work_mode, 1.0) * 1000
        freq = sum(v.frequencies) / 4
        duty = self.fan_duty if self.fan_duty is not None else _AUTO_FAN_DUTY
        work = "In Work" if mining else "In Idle"

        def listing(values: list[Any] | tuple[Any, ...]) -> str:
            return " ".join(str(x) for x in values)

        parts = [
            f"Ver[{v.model_code}-{s.firmware_version}]", f"DNA[{s.serial}]", "MEMFREE[1201472.0]",
            "NETFAIL[0 0 0 0 0 0 0 0]", f"SYSTEMSTATU[Work: {work}, Hash Board: {boards} ]", f"Elapsed[{s.uptime}]",
            "BOOTBY[0x08.00000000]", f"LW[{self.local_work}]", f"MH[{listing(self.hardware_errors)}]",
            f"HW[{sum(self.hardware_errors)}]", "DH[2.732%]", "Temp[30]", f"TMax[{max(chip_max)}]",
            f"TAvg[{round(sum(chip_avg) / boards)}]",
            *(f"Fan{i + 1}[{rpm}]" for i, rpm in enumerate(fans)), f"FanR[{duty if mining else 0}%]", "Vo[329]",
            f"PS[0 1214 {volts} {amps if mining else 0} {output_watts} 1320 {input_watts}]",
            *(f"PLL{b}[1796 4524 5435 2165]" for b in range(boards)),
            f"GHSspd[{s.live_hashrate_ths * 1000:.2f}]", "DHspd[2.732%]", f"GHSmm[{expected_ghs:.2f}]",
            f"GHSavg[{s.live_hashrate_ths * 1000:.2f}]", f"WU[{s.live_hashrate_ths * 13969.84:.2f}]",
            f"Freq[{freq:.2f}]", f"Led[{1 if s.fault_light else 0}]",
            f"MGHS[{listing([f'{r:.2f}' for r in rates])}]", f"MTmax[{listing(chip_max)}]",
            f"MTavg[{listing(chip_avg)}]", f"TA[{boards * s.model.chips_per_board}]", f"Core[{v.core}]",
            "PING[443]", "POWS[0]", f"HASHS[{listing([0] * boards)}]", "POOLS[0]",
            f"SoftOFF[{0 if mining else 4}]", f"ECHU[{listing([0] * boards)}]",
            f"ECMM[{s.messages[0][0] if s.messages else 0}]",
            *(f"SF{b}[{listing(v.frequencies)}]" for b in range(boards)),
            *(f"PVT_T{b}[{' '.join(f'{t:3d}' for t in temps[b])}]" for b in range(boards)),
            *(f"PVT_V{b}[{listing(self.chip_millivolts[b])}]" for b in range(boards)),
            f"MW[{listing([8192794] * boards)}]",
            *(f"MW{b}[{listing(self.chip_work[b] if mining else [0] * len(self.chip_work[b]))}]"
              for b in range(boards)),
            *(f"ASICCRC{b}[{listing([0] * s.model.chips_per_board)}]" for b in range(boards)),
            f"CRC[{listing([0] * boards)}]", "POW_I2C[OK]", "FACOPTS0[]", "FACOPTS1[]",
            f"ATAOPTS0[--avalon10-freq {':'.join(str(f) for f in v.frequencies)} --avalon10-voltage-level 55 ]",
            "ADJ[1]", f"COP[{listing([0] * boards)}]", f"MPO[{round(s.power_limit)}]", "MVL[87]",
            *(f"ATABD{b}[{listing(v.frequencies)}]" for b in range(boards)),
            f"WORKMODE[{self.work_mode}]", f"WORKLEVEL[{self.work_level}]", f"TarT[{self.target_temp}]",
        ]
        return " ".join(parts)

    def _stats(self, *, with_pools: bool) -> dict[str, Any]:
        s = self.state
        entries: list[dict[str, Any]] = [{
            "STATS": 0, "ID": "AVA100", "Elapsed": s.uptime, "Calls": 0, "Wait": 0.0, "Max": 0.0,
            "Min": 99999999.0, "MM ID0": self._mm_string(), "MM Count": 1, "Smart Speed": 1,
            "Voltage Level Offset": 0, "Nonce Mask": 25,
        }]
        if with_pools:
            for index, _ in enumerate(self.pool_slots):
                entries.append({
                    "STATS": index + 1, "ID": f"POOL{index}", "Elapsed": s.uptime, "Calls": 0, "Wait": 0.0,
                    "Max": 0.0, "Min": 99999999.0, "Pool Calls": 0, "Pool Attempts": 0, "Pool Wait": 0.0,
                    "Pool Max": 0.0, "Pool Min": 99999999.0, "Pool Av": 0.0, "Work Had Roll Time": False,
                    "Work Can Roll": False, "Work Had Expire": False, "Work Roll Time": 0,
                    "Work Diff": 65536.0, "Min Diff": 65536.0, "Max Diff": 65536.0, "Min Diff Count": 1,
                    "Max Diff Count": s.accepted if index == 0 else 0, "Times Sent": 1796, "Bytes Sent": 235848,
                    "Times Recv": 4248, "Bytes Recv": 4311342, "Net Bytes Sent": 235848, "Net Bytes Recv": 4311342,
                })
        return _ok(70, "CGMiner stats", STATS=entries)

    def _devdetails(self) -> dict[str, Any]:
        return _ok(69, "Device Details", DEVDETAILS=[{
            "DEVDETAILS": 0, "Name": "AVA10", "ID": 0, "Driver": "avalon10", "Kernel": "", "Model": "",
            "Device Path": "",
        }])

    def _config(self) -> dict[str, Any]:
        return _ok(33, "CGMiner config", CONFIG=[{
            "ASC Count": 1, "PGA Count": 0, "Pool Count": len(self.pool_slots), "Strategy": "Failover",
            "Log Interval": 5, "Device Code": "AVALON", "OS": "Linux", "Hotplug": "None",
        }])

    def _coin(self) -> dict[str, Any]:
        return _ok(78, "CGMiner coin", COIN=[{
            "Hash Method": "sha256", "Current Block Time": time.time() - 300.0,
            "Current Block Hash": "00000000000000000001d0ccaffecb937ee444cb056356abc59b906666607cf1", "LP": True,
            "Network Difficulty": 126271255279306.98,
        }])

    def _lcd(self) -> dict[str, Any]:
        s = self.state
        url, user, _ = self.pool_slots[0] if self.pool_slots else ("", "", "")
        ghs = round(s.live_hashrate_ths * 1000, 2)
        return _ok(125, "LCD", LCD=[{
            "Elapsed": s.uptime, "GHS av": ghs, "GHS 5m": ghs, "GHS 5s": ghs, "Temperature": 0.0,
            "Last Share Difficulty": 65536.0, "Last Share Time": int(time.time()) - 3, "Best Share": 354914572,
            "Last Valid Work": int(time.time()) - 1, "Found Blocks": 0, "Current Pool": url, "User": user,
        }])

    # ----- writes -------------------------------------------------------------------------------
    def _ascset(self, parameter: str) -> dict[str, Any] | None:
        device, _, rest = parameter.partition(",")
        if not parameter:
            return _error(15, "Missing device id parameter")
        if not device.strip().lstrip("-").isdigit() or int(device) != 0:
            return _error(107, f"Invalid ASC id {device} - range is 0 - 0")
        option, _, setting = rest.partition(",")
        if not option:
            return _error(116, "Missing option after ASC number")

        def info(text: str) -> dict[str, Any]:
            return {"STATUS": _status("I", 118, f"ASC 0 set info: {text}"), "id": 1}

        def failed(text: str) -> dict[str, Any]:
            return _error(120, f"ASC 0 set failed: {text}")

        done = _ok(119, "ASC 0 set OK")
        option = option.lower()
        if option == "help":
            return info(_ASCSET_HELP)
        if option in ("softoff", "softon"):
            _, _, when = setting.partition(":")  # `<mode>:<unix time>`
            if not when.strip().isdigit():
                return failed(f"invalid {option} time: {setting}")
            if option == "softoff":
                self.soft_off_at, self.soft_on_at = int(when), None
            else:
                self.soft_on_at, self.soft_off_at = int(when), None
            self._apply_schedule()
            if self.variant.a1466_softoff_softon:
                return done if option == "softoff" else None  # None: close without a reply
            return info(f"success {option}:{int(when)}")
        if option == "led":
            module, _, state = setting.partition("-")
            if module.strip() != "1":
                return failed(f"invalid module_id: {module}, valid range 1-1")
            if state == "":
                self.state.fault_light = not self.state.fault_light
            elif state in ("0", "1"):
                self.state.fault_light = state == "1"
            else:
                return failed(f"invalid LED status: {state}, valid value 0|1")
            return done
        if option == "reboot":
            self.restart()
            return done
        if option == "fan-spd":
            value = setting.strip()
            if value == "-1":
                self.fan_duty = None
                return done
            if not value.isdigit() or not 0 <= int(value) <= 100:
                return failed(f"invalid fan speed: {value}, valid range 25-100 or -1")
            self.fan_duty = max(25, int(value)) if int(value) > 0 else 0
            return done
        if option == "target-temp":
            if not setting.strip().isdigit() or not 50 <= int(setting) <= 90:
                return failed(f"invalid target temperature: {setting}, valid range 50-90")
            self.target_temp = int(setting)
            return done
        if option in ("workmode", "worklevel"):
            verb, _, value = setting.partition(",")
            # pyasic-rs sends a power with its unit ("3\u00a0kW"); pyasic a bare level (0-2)
            number = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(k?W)?", value.replace("\u00a0", " "))
            if verb != "set" or number is None:
                return failed(f"invalid {option} setting: {setting}")
            level = round(float(number.group(1)) * (1000 if number.group(2) == "kW" else 1))
            if option == "workmode":
                if level not in _MODE_FACTORS:
                    return failed(f"invalid workmode: {level}, valid range 0-2")
                self.work_mode = level
            elif level <= 2:
                self.work_level = level
            else:
                self.state.power_limit = float(level)
            self._apply_power()
            return done
        if option in _ASCSET_HELP.split("|"):
            return done
        return failed(f"Unknown option: {option}")

    def _setpool(self, parameter: str) -> dict[str, Any]:
        fields = parameter.split(",")
        if not parameter:
            return _error(132, "Pool set error: no params")
        if len(fields) not in (5, 6) or not fields[2].strip().lstrip("-").isdigit():
            return _error(132, f"Pool set error: we need 5 | 6 arguments, your input is {min(len(fields), 6)} "
                               "arguments.")
        username, password, slot = fields[0], fields[1], int(fields[2])
        url, user = fields[3], fields[4]
        pool_password = fields[5] if len(fields) == 6 else ""
        if username != self.state.username:
            return _error(132, "Pool set error: username err")
        if password != self.state.password or self.auth_refused():
            return _error(132, "Pool set error: userpass err")
        if not 0 <= slot <= 2:
            return _error(132, f"Pool set error: pool num must between 0 and 2 , your input is {slot}")
        slots = list(self.pending_slots if self.pending_slots is not None else self.pool_slots)
        while len(slots) <= slot:
            slots.append(("", "", ""))
        slots[slot] = (url, user, pool_password)
        self.pending_slots = [entry for entry in slots if entry[0]]
        return _ok(133, f"Pool set info: \npool {slot} success set to {url}\nworker is {user}\n"
                        f"workerpassword is {pool_password}\nPlease reboot miner to make config work.\n")

    # ----- web ----------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path in ("/", "/index.html", "/login.cgi"):
            return HttpResponse.html(
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Avalon Device</title></head>"
                "<body><div class=\"login\"><h2>AvalonMiner</h2><form action=\"/login.cgi\" method=\"post\">"
                "<input name=\"username\" type=\"text\"><input name=\"passwd\" type=\"password\">"
                "<button type=\"submit\">Login</button></form></div></body></html>")
        return HttpResponse(status=404, body=b"404 Not Found", content_type="text/html")
