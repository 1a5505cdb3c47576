"""Discovery: targets, identification, the MinerFactory, and scan-and-read."""

from asicfleet.discovery._collect import ScanRecord, scan_and_collect
from asicfleet.discovery._factory import MinerFactory, ScanSummary
from asicfleet.discovery._identify import Identified, identify
from asicfleet.discovery._listener import IPReport, MinerListener, parse_ip_report
from asicfleet.discovery._targets import AddressBlock, TargetSet, parse_target, read_target_file

__all__ = [
    "AddressBlock",
    "IPReport",
    "Identified",
    "MinerFactory",
    "MinerListener",
    "ScanRecord",
    "ScanSummary",
    "TargetSet",
    "identify",
    "parse_ip_report",
    "parse_target",
    "read_target_file",
    "scan_and_collect",
]
