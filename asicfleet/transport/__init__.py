"""Wire transports: CGMiner JSON RPC over TCP and HTTP(S); one interface of settings for both."""

from asicfleet.transport._http import HttpClient, HttpReply, probe_http
from asicfleet.transport._json import decode_json
from asicfleet.transport._rpc import (
    RPC_PORT,
    check_status,
    close_quietly,
    encode_request,
    open_tcp,
    read_capped,
    read_exact_capped,
    rpc_call,
    rpc_multi,
    rpc_raw,
)
from asicfleet.transport._settings import PortMap, TransportSettings

__all__ = [
    "RPC_PORT",
    "HttpClient",
    "HttpReply",
    "PortMap",
    "TransportSettings",
    "check_status",
    "close_quietly",
    "decode_json",
    "encode_request",
    "open_tcp",
    "probe_http",
    "read_capped",
    "read_exact_capped",
    "rpc_call",
    "rpc_multi",
    "rpc_raw",
]
