"""Distributed scanning orchestrator (see issue: distributed scanning)."""
