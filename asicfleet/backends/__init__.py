"""Firmware backends, one module per family. Every module here is imported, so adding a firmware
means adding one module whose Backend subclass sets `family`; `PRIORITY` orders identification."""

from __future__ import annotations

import importlib
import pkgutil

from asicfleet.backends._base import CONTROLS, Backend, DataField, Probe, Source, at, dig, hashrate_from, to_float


def _all_backends() -> list[type[Backend]]:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    found: list[type[Backend]] = []
    pending = list(Backend.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "family" in cls.__dict__:
            found.append(cls)
    return sorted(found, key=lambda c: (getattr(c, "PRIORITY", 100), c.family))


BACKENDS: list[type[Backend]] = _all_backends()


def backend_for(family: str) -> type[Backend]:
    for cls in BACKENDS:
        if cls.family == family:
            return cls
    raise KeyError(f"no backend for firmware family {family!r}; known: {[c.family for c in BACKENDS]}")


__all__ = ["BACKENDS", "CONTROLS", "Backend", "DataField", "Probe", "Source", "at", "backend_for", "dig",
           "hashrate_from", "to_float"]
