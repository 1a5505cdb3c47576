"""The Celery workers (top layer): the app and the task bodies. They use `fleet` and `asicfleet` and never
import `orchestrator`."""
