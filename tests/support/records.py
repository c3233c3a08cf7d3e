"""Builders of legacy records in their real formats, for tests: the simulators' own builders
(`simulators.domain.formats`), so tests and the simulated city send exactly the same bytes."""

from __future__ import annotations

from simulators.domain.formats import (
    BEIJING,
    HOME,
    cap_alert,
    hj212_packet,
    open311_form,
    party_diary,
    safety_event,
    truncated_xml,
    with_bad_crc,
)

__all__ = [
    "BEIJING",
    "HOME",
    "cap_alert",
    "hj212_packet",
    "open311_form",
    "party_diary",
    "safety_event",
    "truncated_xml",
    "with_bad_crc",
]
