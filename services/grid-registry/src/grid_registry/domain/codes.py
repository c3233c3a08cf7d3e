"""Grid codes: the 15-digit comprehensive-grid code and the 18-digit micro-grid code.

Layout (after Beijing's local standard: 6 district + 3 street + 3 community + 3 sequence)::

    321003 009 001 004        comprehensive grid 004 of community 321003009001
    321003 009 001 004 002    micro-grid 002 inside that grid
    321003 009 001 901        special-purpose grid (专属网格): sequences 901-999

The street part is the last 3 digits of the 9-digit statistical street code, the community part the last
3 digits of the 12-digit community code, so the first 12 digits of a grid code are its community's code.
"""

from __future__ import annotations

from dataclasses import dataclass

GRID_CODE_LENGTH = 15
MICRO_GRID_CODE_LENGTH = 18
COMMUNITY_CODE_LENGTH = 12
FIRST_SPECIAL_SEQUENCE = 901
_MAX_PART = 999


class MalformedGridCode(ValueError):
    """A grid code that does not follow the 15/18-digit pattern; ``reason`` is a stable dotted code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class GridCode:
    """The parts of a valid grid code; ``micro`` is None for a comprehensive or special grid."""

    district: str
    street: str
    community: str
    sequence: str
    micro: str | None = None

    @property
    def street_code(self) -> str:
        """The 9-digit statistical street (街道/乡镇) code."""
        return self.district + self.street

    @property
    def community_code(self) -> str:
        """The 12-digit statistical community (社区/村) code."""
        return self.district + self.street + self.community

    @property
    def grid_code(self) -> str:
        """The 15-digit code of the grid itself, or of the grid a micro-grid belongs to."""
        return self.community_code + self.sequence

    @property
    def is_special(self) -> bool:
        return int(self.sequence) >= FIRST_SPECIAL_SEQUENCE

    def __str__(self) -> str:
        return self.grid_code + (self.micro or "")


def parse_grid_code(code: str) -> GridCode:
    """Split a 15- or 18-digit grid code into its parts.

    Raises MalformedGridCode with reasons ``grid_code.not_digits``, ``grid_code.bad_length``,
    ``grid_code.bad_district``, ``grid_code.zero_part`` or ``grid_code.special_has_micro``.
    """
    if not (code.isascii() and code.isdigit()):
        raise MalformedGridCode("grid_code.not_digits", f"{code!r} must contain ASCII digits only")
    if len(code) not in (GRID_CODE_LENGTH, MICRO_GRID_CODE_LENGTH):
        raise MalformedGridCode(
            "grid_code.bad_length",
            f"{code!r} has {len(code)} digits; expected {GRID_CODE_LENGTH} (grid) or "
            f"{MICRO_GRID_CODE_LENGTH} (micro-grid)",
        )
    district = code[:6]
    _check_district(code)
    parts = {"street": code[6:9], "community": code[9:12], "sequence": code[12:15]}
    if len(code) == MICRO_GRID_CODE_LENGTH:
        parts["micro"] = code[15:18]
    for name, value in parts.items():
        if value == "000":
            raise MalformedGridCode("grid_code.zero_part", f"{code!r}: the {name} part must not be 000")
    parsed = GridCode(district=district, **parts)
    if parsed.is_special and parsed.micro is not None:
        raise MalformedGridCode(
            "grid_code.special_has_micro",
            f"{code!r}: a special grid (sequence >= {FIRST_SPECIAL_SEQUENCE}) has no micro-grids",
        )
    return parsed


def make_grid_code(community_code: str, sequence: int, micro: int | None = None) -> str:
    """The grid code of grid ``sequence`` in a 12-digit community, or of micro-grid ``micro`` in it.

    Raises MalformedGridCode (``grid_code.bad_community``, ``grid_code.part_out_of_range`` or any reason of
    parse_grid_code) so that no invalid code can be built.
    """
    if not (community_code.isascii() and community_code.isdigit()) or len(community_code) != 12:
        raise MalformedGridCode(
            "grid_code.bad_community", f"{community_code!r} is not a 12-digit community code"
        )
    parts = [("sequence", sequence)] + ([] if micro is None else [("micro", micro)])
    for name, value in parts:
        if not 1 <= value <= _MAX_PART:
            raise MalformedGridCode("grid_code.part_out_of_range", f"{name} {value} is outside 1..999")
    code = f"{community_code}{sequence:03d}" + ("" if micro is None else f"{micro:03d}")
    parse_grid_code(code)
    return code


def _check_district(code: str) -> None:
    # GB/T 2260: province 11-82, a county-level code never ends in 00 (that is a city or province).
    if not 11 <= int(code[:2]) <= 82 or code[4:6] == "00":
        raise MalformedGridCode(
            "grid_code.bad_district",
            f"{code!r}: district part {code[:6]!r} is not a county-level GB/T 2260 division code",
        )
