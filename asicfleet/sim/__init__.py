"""The fleet simulator: real servers on loopback addresses that answer as each firmware does.

Each family is one module here whose SimMiner subclass sets `family`; every module is imported.
"""

from __future__ import annotations

import importlib
import pkgutil

from asicfleet._limits import raise_fd_limit
from asicfleet.sim._core import (
    Fault,
    HttpRequest,
    HttpResponse,
    MinerState,
    Service,
    SimMiner,
    digest_challenge,
    digest_ok,
    make_sim_image,
    read_sim_image,
    rpc_error,
    rpc_status,
)
from asicfleet.sim._fleet import SimFleet
from asicfleet.sim._ipreport import ip_report_datagram, press_ip_report, send_ip_report
from asicfleet.sim._loopback import NoFreeLoopbackError, claim_loopback


def _all_families() -> dict[str, type[SimMiner]]:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, type[SimMiner]] = {}
    pending = list(SimMiner.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "family" in cls.__dict__:
            found[cls.family] = cls
    return found


SIM_FAMILIES: dict[str, type[SimMiner]] = _all_families()

__all__ = [
    "SIM_FAMILIES",
    "Fault",
    "HttpRequest",
    "HttpResponse",
    "MinerState",
    "NoFreeLoopbackError",
    "Service",
    "SimFleet",
    "SimMiner",
    "claim_loopback",
    "digest_challenge",
    "digest_ok",
    "ip_report_datagram",
    "make_sim_image",
    "press_ip_report",
    "raise_fd_limit",
    "read_sim_image",
    "rpc_error",
    "rpc_status",
    "send_ip_report",
]
