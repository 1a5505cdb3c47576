"""Celery workers (see issue: distributed scanning)."""
