"""The web dashboard (`asicfleet dashboard`): fleet totals per site, the miner table, a page per miner with
its history charts and actions, rule firings, scans and rollouts; read from the fleet's Redis."""

from orchestrator.dashboard.app import Dashboard, create_app
from orchestrator.dashboard.auth import DashboardAuth, DashboardConfigError, is_loopback_host
from orchestrator.dashboard.serve import RunningDashboard, serve

__all__ = ["Dashboard", "DashboardAuth", "DashboardConfigError", "RunningDashboard", "create_app",
           "is_loopback_host", "serve"]
