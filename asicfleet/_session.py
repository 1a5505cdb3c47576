"""What the miner handles of one factory share: transport settings, the HTTP client, credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_address

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from asicfleet.config import Credentials
from asicfleet.transport import HttpClient, TransportSettings


class CredentialRule(BaseModel):
    """Logins to try, in order, for miners of `family` (all families when None) inside `network`."""

    model_config = ConfigDict(frozen=True)

    network: IPv4Network = IPv4Network("0.0.0.0/0")
    family: str | None = None
    username: str = "root"
    passwords: list[SecretStr] = Field(min_length=1)


@dataclass
class CredentialStore:
    """Chooses which logins to try for a miner, remembering the one that worked per address.

    Farms change default passwords, so each rule holds an ordered list of fallbacks; the first rule
    whose network holds the address and whose family matches comes first, the firmware's own
    default last. Passwords are SecretStr: they never reach a repr, a log line or a dump.
    """

    rules: list[CredentialRule] = field(default_factory=list)
    _working: dict[tuple[str, str], Credentials] = field(default_factory=dict, repr=False)

    def add(self, rule: CredentialRule) -> None:
        self.rules.append(rule)

    def candidates(self, ip: str, family: str, defaults: list[Credentials]) -> list[Credentials]:
        address = ip_address(ip)
        known = self._working.get((str(address), family))
        found: list[Credentials] = [known] if known else []
        for rule in self.rules:
            if address in rule.network and rule.family in (None, family):
                found.extend(Credentials(username=rule.username, password=p) for p in rule.passwords)
        found.extend(defaults)
        unique: list[Credentials] = []
        for cred in found:
            if all((c.username, c.password.get_secret_value()) != (cred.username, cred.password.get_secret_value())
                   for c in unique):
                unique.append(cred)
        return unique

    def remember(self, ip: str, family: str, credentials: Credentials) -> None:
        self._working[(str(ip_address(ip)), family)] = credentials


@dataclass
class Session:
    settings: TransportSettings = field(default_factory=TransportSettings)
    credentials: CredentialStore = field(default_factory=CredentialStore)
    http: HttpClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = HttpClient(self.settings)

    async def aclose(self) -> None:
        await self.http.aclose()
