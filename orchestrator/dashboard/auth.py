"""Who may do what on the dashboard.

Reading needs no login unless `login_to_read` is set (and it always is off loopback); every action needs a
login. The password comes from ASICFLEET_DASHBOARD_PASSWORD or a file (ASICFLEET_DASHBOARD_PASSWORD_FILE,
e.g. a mounted secret); without one, actions are refused and the server listens on loopback only.

A login is a signed session cookie (HttpOnly, SameSite=Strict, Secure when served over HTTPS) holding a
random CSRF token; every POST must carry that token in its `X-CSRF-Token` header or `csrf` form field, and a
POST whose Origin names another site is refused before that. The signing key is random per process unless
ASICFLEET_DASHBOARD_SECRET sets it (so sessions survive a restart, or several replicas share them).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr
from starlette.requests import Request

SESSION_COOKIE = "asicfleet_dashboard"
SESSION_HOURS = 12
MIN_PASSWORD = 8


class DashboardConfigError(ValueError):
    """The dashboard cannot start as configured (the message says what to change)."""


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`: reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


@dataclass(frozen=True)
class DashboardAuth:
    password: SecretStr | None = None
    login_to_read: bool = False
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    user: str = "admin"

    @classmethod
    def from_environment(cls, *, login_to_read: bool = False, password_file: Path | None = None,
                         environ: dict[str, str] | None = None) -> DashboardAuth:
        env = os.environ if environ is None else environ
        password = env.get("ASICFLEET_DASHBOARD_PASSWORD") or None
        file = password_file or (Path(env["ASICFLEET_DASHBOARD_PASSWORD_FILE"])
                                 if env.get("ASICFLEET_DASHBOARD_PASSWORD_FILE") else None)
        if file is not None:
            try:
                password = file.read_text().strip() or None
            except OSError as exc:
                raise DashboardConfigError(f"cannot read the dashboard password file {file}: {exc}") from None
            if password is None:
                raise DashboardConfigError(f"the dashboard password file {file} is empty")
        if password is not None and len(password) < MIN_PASSWORD:
            raise DashboardConfigError(f"the dashboard password must have at least {MIN_PASSWORD} characters")
        secret = env.get("ASICFLEET_DASHBOARD_SECRET") or secrets.token_urlsafe(32)
        return cls(SecretStr(password) if password else None, login_to_read, secret,
                   env.get("ASICFLEET_DASHBOARD_USER") or "admin")

    @property
    def configured(self) -> bool:
        return self.password is not None

    def for_host(self, host: str) -> DashboardAuth:
        """The policy for serving on `host`: beyond loopback only with a password, and then nothing is read
        without a login either."""
        if is_loopback_host(host):
            return self
        if not self.configured:
            raise DashboardConfigError(
                f"refusing to serve the dashboard on {host}: beyond loopback it needs a login; set "
                "ASICFLEET_DASHBOARD_PASSWORD (or ASICFLEET_DASHBOARD_PASSWORD_FILE), or listen on 127.0.0.1")
        return DashboardAuth(self.password, True, self.secret_key, self.user)

    def check_password(self, user: str, password: str) -> bool:
        if self.password is None:
            return False
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.get_secret_value().encode())
        return user_ok and password_ok


# ----- the session -------------------------------------------------------------------------------
def logged_in(request: Request) -> bool:
    return bool(request.session.get("user"))


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use: a page's forms and scripts carry it)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def log_in(request: Request, user: str) -> None:
    request.session.clear()  # a fresh session on login: no token chosen before it survives it
    request.session["user"] = user
    request.session["csrf"] = secrets.token_urlsafe(24)


def same_origin(request: Request) -> bool:
    """A POST from a page of this server: its Origin (or, without one, its Referer) names this host. Browsers
    send Origin on every cross-site POST, so a forged form from elsewhere is refused here."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # not a browser (curl, a script): the CSRF token still has to match
    if source == "null":
        return False
    parts = urlsplit(source)
    return parts.netloc == request.headers.get("host", request.url.netloc)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), expected.encode())
