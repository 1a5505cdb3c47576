"""Hardware facts (makes, models, boards, chips, fans, nominal figures): data, apart from firmware code."""

from asicfleet.hardware._models import KNOWN_MODELS, Make, MinerModel, lookup_model

__all__ = ["KNOWN_MODELS", "Make", "MinerModel", "lookup_model"]
