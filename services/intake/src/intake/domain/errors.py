"""The two ways a legacy record can fail to become a case.

`Rejected`: the record is malformed (bad CRC, invalid XML, schema violation, attack ...). It goes to
`intake.dlq.v1` with its original bytes; it will never parse, whatever we configure.

`Quarantined`: the record is well formed but we cannot map it yet (a code with no crosswalk entry, a
station MN the registry does not know). It goes to `intake.quarantine.v1` and is replayed once the
mapping exists.

`reason` is a stable, machine-readable code (dotted, lower case, e.g. ``hj212.crc_mismatch``): metrics
count by it and integration teams grep for it. `detail` is the human sentence that says exactly what
was wrong and where.
"""

from __future__ import annotations


class IntakeError(Exception):
    """Base of the two outcomes; never raised itself."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Rejected(IntakeError):
    """Malformed input: dead-lettered with the original bytes and this reason."""


class Quarantined(IntakeError):
    """Well formed but not mappable yet: quarantined, counted by reason, replayable."""
