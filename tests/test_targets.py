"""Scan targets: every form parses to the right addresses; bad input is refused before any traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from asicfleet import InvalidTargetError, MinerFactory
from asicfleet.discovery import TargetSet, parse_target


def addresses(*targets: str) -> list[str]:
    return [str(a) for a in TargetSet().add(targets)]


def test_subnet_skips_network_and_broadcast() -> None:
    found = addresses("10.1.2.0/24")
    assert len(found) == 254 and found[0] == "10.1.2.1" and found[-1] == "10.1.2.254"
    assert addresses("10.1.2.7/32") == ["10.1.2.7"]


def test_a_cidr_with_host_bits_is_refused_naming_the_network() -> None:
    """`127.66.0.0/8` once scanned all of 127/8 without a word: a typo must not widen a scan."""
    with pytest.raises(InvalidTargetError, match=r"127\.66\.0\.0/8 has host bits set; did you mean 127\.0\.0\.0/8\?"):
        parse_target("127.66.0.0/8")
    with pytest.raises(InvalidTargetError, match=r"did you mean 10\.1\.2\.0/24\?"):
        TargetSet().add(["10.1.2.7/24"])
    with pytest.raises(InvalidTargetError, match="host bits"):
        TargetSet().add(["10.1.0.0/16"]).exclude(["10.1.2.9/24"])
    assert len(addresses("127.66.0.0/16")) == 65534  # the network address itself stays fine


def test_octet_patterns() -> None:
    assert len(addresses("10.10.*.*")) == 65536
    found = addresses("10.0.1-5.*")
    assert len(found) == 5 * 256 and found[0] == "10.0.1.0" and found[-1] == "10.0.5.255"
    assert addresses("10.0.0.1,3,5-6") == ["10.0.0.1", "10.0.0.3", "10.0.0.5", "10.0.0.6"]


def test_ranges_and_overlaps_are_merged() -> None:
    assert addresses("10.0.0.1-10.0.0.3") == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert addresses("10.0.0.1-10.0.0.3", "10.0.0.2-10.0.0.4", "10.0.0.4") == [f"10.0.0.{i}" for i in range(1, 5)]


def test_exclusions() -> None:
    targets = TargetSet().add(["10.0.0.0/24"]).exclude(["10.0.0.10-10.0.0.19", "10.0.0.200/29"])
    assert len(targets) == 254 - 10 - 8
    assert "10.0.0.15" not in {str(a) for a in targets}


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0.256", "10.0.0.9-10.0.0.1", "banana", "", "10.0.5-1.*",
                                 "10.0.0.x", "fe80::/64", "10.0.0", "10.0.0.1-10.0.0"])
def test_malformed_targets_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTargetError):
        TargetSet().add([bad])


@pytest.mark.parametrize("public", ["8.8.8.0/24", "1.1.1.1", "11.0.0.0/8", "9.255.255.255-10.0.0.5"])
def test_public_space_needs_an_explicit_flag(public: str) -> None:
    with pytest.raises(InvalidTargetError, match="allow_public"):
        MinerFactory.from_targets([public])
    assert len(MinerFactory.from_targets([public], allow_public=True).targets) >= 1


def test_huge_ranges_are_refused() -> None:
    with pytest.raises(InvalidTargetError, match="more than"):
        TargetSet(allow_public=True).add(["0.0.0.0/0"])


def test_target_file(tmp_path: Path) -> None:
    listing = tmp_path / "ips.txt"
    listing.write_text("# rack 1\n10.0.0.1\n10.0.0.8-10.0.0.9  # two more\n\n10.0.1.0/30, 10.0.2.5\n")
    factory = MinerFactory.from_file(listing)
    assert [str(a) for a in factory.targets] == ["10.0.0.1", "10.0.0.8", "10.0.0.9", "10.0.1.1", "10.0.1.2",
                                                 "10.0.2.5"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InvalidTargetError, match="no targets"):
        MinerFactory.from_file(tmp_path / "empty.txt")
    with pytest.raises(InvalidTargetError, match="cannot read"):
        MinerFactory.from_file(tmp_path / "missing.txt")


def test_factory_builders_match_the_guide() -> None:
    factory = (MinerFactory.from_subnet("192.168.1.0/24").with_concurrent_limit(2500)
               .with_connectivity_timeout_secs(1).with_identification_timeout_secs(10))
    assert len(factory.targets) == 254 and factory.concurrent_limit == 2500
    assert factory.settings.connect_timeout == 1.0 and factory.identification_timeout == 10.0
    assert len(MinerFactory.from_octets(10, 0, "1-2", "*").targets) == 512
    assert len(MinerFactory.from_range("10.0.0.1-10.0.0.20").targets) == 20
    with pytest.raises(InvalidTargetError):
        MinerFactory.from_subnet("10.0.0.1")
    with pytest.raises(ValueError):
        MinerFactory.from_subnet("10.0.0.0/24").with_concurrent_limit(0)


def test_parse_target_blocks_are_compact() -> None:
    assert len(parse_target("10.0.0.0/16")) == 1
