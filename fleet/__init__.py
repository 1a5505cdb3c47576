"""The fleet's shared state and settings: the layer between the library and the services.

Both the orchestrator (planning, watching, the command line) and the workers (the Celery app and its
tasks) import this package, and neither imports the other; the library `asicfleet` knows nothing of it.

- `fleet.settings`  the environment (`ASICFLEET_...`): Redis, broker, TTLs, sites and secrets files
- `fleet.store`     the shape of scans in Redis (keys, chunk and scan records, worker heartbeats)
- `fleet.plan`      cutting targets into chunks
- `fleet.sites`     sites, their queues and schedules; the discovery options a task carries
- `fleet.scans`     starting, reaping, resuming and reading scans (tasks sent by name)
- `fleet.controls`  the control models a rollout sends
- `fleet.ledger`    the shape of rollouts in Redis (the per-miner ledger)
- `fleet.messaging` the Celery app configuration shared by both sides, and the task names
- `fleet.rules`     rules with actions: their models and file, the engine, its Redis state, the firings ledger
- `fleet.alerts`    webhook targets (generic JSON, Slack, Telegram), sending, site-level events
- `fleet.loop`      running coroutines from synchronous code
"""
