"""Hardware facts (makes, models, boards, chips, fans, nominal figures): data, apart from firmware code."""

from asicfleet.hardware._models import (
    KNOWN_MODELS,
    Cooling,
    Make,
    MinerModel,
    Provenance,
    SimulableModel,
    StockProfile,
    catalogue,
    lookup_model,
)

__all__ = ["KNOWN_MODELS", "Cooling", "Make", "MinerModel", "Provenance", "SimulableModel", "StockProfile", "catalogue",
           "lookup_model"]
