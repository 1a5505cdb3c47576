"""The orchestrator (top layer): the `asicfleet` command line, watching scans, planning and driving rollouts,
the local cluster. It uses `fleet` and `asicfleet`, sends tasks by name, and never imports `workers`."""
