"""TCP connects whose outcome the network decides, not the speed of our own event loop.

A connect's deadline is a timer on the event loop. When the loop runs behind (thousands of probes in
flight, a busy machine), the timer can fire in the same loop pass as the completion it should have
waited for, and a miner that answered in microseconds would count as silent. So when the deadline
expires, the socket itself is asked, without waiting, whether the kernel finished the handshake
meanwhile: connected or refused is the network's answer; only a socket still pending is silence.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import select
import socket

from asicfleet._errors import LocalResourceError, MinerConnectionError, MinerTimeoutError

_NOTHING_THERE = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
# Failures of this machine, not of the address: out of descriptors, buffers or local ports.
_OURS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL, errno.EAGAIN}


def _settled(sock: socket.socket) -> bool:
    """True when the handshake completed; raises OSError when the kernel already knows it failed."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    if not poller.poll(0):
        return False  # still waiting for the peer
    failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if failure:
        raise OSError(failure, os.strerror(failure))
    try:
        sock.getpeername()
    except OSError:
        # the loop's own connect callback already read (and so cleared) the error, in the same pass as the
        # deadline fired: writable but never connected. The kernel said no; the error code is gone with it
        raise ConnectionRefusedError(errno.ECONNREFUSED, "refused (seen as the deadline expired)") from None
    return True


def connect_error(ip: str, port: int, exc: OSError) -> MinerConnectionError | LocalResourceError:
    """Maps a failed connect to our errors: nothing there, a host that misbehaves, or our own limits."""
    if exc.errno in _OURS:
        return LocalResourceError(f"connect to {ip}:{port}: this machine ran out of resources "
                                  f"({exc.strerror or exc})")
    absent = isinstance(exc, ConnectionRefusedError) or exc.errno in _NOTHING_THERE
    return MinerConnectionError(f"connect to {ip}:{port} failed: {exc.strerror or exc}", nothing_listens=absent)


_IN_PROGRESS = {errno.EINPROGRESS, errno.EAGAIN, errno.EINTR}


def _wake(writable: asyncio.Future[None]) -> None:
    if not writable.done():
        writable.set_result(None)


async def _connect_nonblocking(loop: asyncio.AbstractEventLoop, sock: socket.socket, ip: str, port: int) -> None:
    """What `loop.sock_connect` does, for an IPv4 address already numeric: uvloop's resolves the address and
    converts the socket's family on every call, a fifth of the CPU a scan spends on an empty address."""
    try:
        socket.inet_pton(socket.AF_INET, ip)
    except OSError:  # a host name: connect_ex would resolve it blocking the loop; the loop resolves it
        await loop.sock_connect(sock, (ip, port))
        return
    failure = sock.connect_ex((ip, port))
    if failure in _IN_PROGRESS:
        writable = loop.create_future()
        fd = sock.fileno()
        loop.add_writer(fd, _wake, writable)
        try:
            await writable
        finally:
            loop.remove_writer(fd)
        failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if failure:
        raise OSError(failure, os.strerror(failure))


RECEIVE_BUFFER = 16 * 1024  # bytes (the kernel doubles it); set before connecting, so the window is small


async def connect_socket(ip: str, port: int, timeout: float) -> socket.socket:
    """A connected non-blocking socket to ip:port (an IPv4 address), or MinerTimeoutError when the peer
    gave no answer within `timeout` seconds, MinerConnectionError when it refused or failed, and
    LocalResourceError when this machine could not make the attempt."""
    loop = asyncio.get_running_loop()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise connect_error(ip, port, exc) from None
    try:
        sock.setblocking(False)
        # a miner's reply is read a little at a time: with the kernel's auto-tuned buffer one read can bring
        # 256 KiB into our stream buffer, outside the reply budget, for every connection of every hostile host
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        try:
            async with asyncio.timeout(timeout):  # starts with the SYN: the connect call is in this step
                await _connect_nonblocking(loop, sock, ip, port)
        except TimeoutError:
            if not _settled(sock):
                raise MinerTimeoutError(f"connect to {ip}:{port} timed out after {timeout:g}s") from None
        return sock
    except OSError as exc:
        sock.close()
        raise connect_error(ip, port, exc) from None
    except BaseException:
        sock.close()
        raise


def is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True
