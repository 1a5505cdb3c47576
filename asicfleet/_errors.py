"""The exceptions asicfleet raises; all derive from `AsicFleetError`."""

from __future__ import annotations


class AsicFleetError(Exception):
    """Base of every asicfleet error."""


class InvalidTargetError(AsicFleetError, ValueError):
    """A scan target (CIDR, range, octets, IP file) is malformed or not allowed."""


class TooManyAddressesError(InvalidTargetError):
    """The targets hold more addresses than this scan may probe (a typo such as /8 for /16, or a range
    that belongs on the distributed path); the limit is raised explicitly."""


class MinerError(AsicFleetError):
    """Talking to one miner failed."""


class MinerConnectionError(MinerError):
    """The miner could not be reached or closed the connection early.

    `nothing_listens` is true when the address refused the connection or is unreachable: no miner there,
    as opposed to a host that accepted and then reset the connection.
    """

    def __init__(self, message: str, *, nothing_listens: bool = False) -> None:
        super().__init__(message)
        self.nothing_listens = nothing_listens


class LocalResourceError(MinerError):
    """This machine could not make the attempt (out of descriptors, buffers or local ports): says nothing
    about the miner, so a scan retries the address later instead of reporting it."""


class MinerTimeoutError(MinerError):
    """The miner did not answer in time."""


class MinerResponseError(MinerError):
    """The miner answered with something that cannot be understood (malformed, truncated)."""


class ResponseTooLargeError(MinerResponseError):
    """The reply exceeded the configured size cap; reading stopped there."""


class MinerAPIError(MinerError):
    """The miner understood the request and refused it (a STATUS=E reply, an HTTP error)."""


class AuthenticationError(MinerAPIError):
    """No configured credential was accepted."""


class UnsupportedControlError(AsicFleetError, NotImplementedError):
    """The control is not available on this miner's firmware."""


class ListenerError(AsicFleetError, OSError):
    """The listener could not open its UDP port (in use, or below 1024 without the privilege to bind it)."""
