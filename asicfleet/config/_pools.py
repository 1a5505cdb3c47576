"""Pool settings: a miner has ordered groups of pools."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator

_SCHEMES = ("stratum+tcp://", "stratum+ssl://", "stratum2+tcp://", "stratum+tls://")


class Pool(BaseModel):
    """One pool: `url` must be stratum+tcp, stratum+ssl/tls or stratum v2 (stratum2+tcp)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="stratum+tcp://host:port, stratum+ssl://host:port or stratum2+tcp://host:port/key")
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(default="x", max_length=255)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        url = url.strip()
        scheme = next((s for s in _SCHEMES if url.lower().startswith(s)), None)
        if scheme is None:
            raise ValueError(f"pool URL {url!r} must start with one of {', '.join(_SCHEMES)}")
        rest = url[len(scheme):]
        host, sep, port_and_path = rest.partition(":")
        port = port_and_path.split("/", 1)[0]
        if not host or not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"pool URL {url!r} needs a host and a port (1..65535)")
        if any(c.isspace() for c in url):
            raise ValueError(f"pool URL {url!r} contains white space")
        return url

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].split(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.split("://", 1)[1].split(":", 1)[1].split("/", 1)[0])


class PoolGroup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    quota: int = Field(default=1, ge=0)
    pools: list[Pool] = Field(min_length=1, max_length=3, description="in priority order; miners take 1..3")


class Credentials(BaseModel):
    """A login for a miner's API; the password never shows in repr, logs or dumps."""

    model_config = ConfigDict(frozen=True)

    username: str = "root"
    password: SecretStr = SecretStr("")

    @field_serializer("password", when_used="json")
    def _hide(self, value: SecretStr) -> str:
        return "**********"
