"""Who may see which figures: a street sees its own street and the grids in it, not its neighbours.

A `Scope` is what a caller is entitled to (the city command centre, a district, a street, a grid, a
department). Division codes nest by prefix (district 6 digits, street 9, grid 15: GB/T 2260 plus
3 + 6 digits), so a unit sees the rows of its own code and of the codes below it. City-wide rows
(dimension `all`) and rows split by network or category mix every unit's cases: only the city sees
them. A department sees its own rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from evaluation.domain.case_facts import CaseFacts

ScopeKind = Literal["city", "district", "street", "grid", "department"]
_CODES: dict[str, re.Pattern[str]] = {
    "district": re.compile(r"^[0-9]{6}$"),
    "street": re.compile(r"^[0-9]{9}$"),
    "grid": re.compile(r"^[0-9]{15}$"),
    "department": re.compile(r"^[a-z][a-z0-9_-]{1,40}$"),
}
# The division dimensions a division scope can see, from its own level down.
_BELOW: dict[str, tuple[str, ...]] = {
    "district": ("district", "street", "grid"),
    "street": ("street", "grid"),
    "grid": ("grid",),
}


class ScopeError(ValueError):
    """A scope that names no unit we know how to check."""


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    code: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        """`city`, `district:321003`, `street:321003009`, `grid:<15 digits>`, `department:<code>`."""
        if text is None or text == "city":
            return CITY
        kind, _, code = text.partition(":")
        pattern = _CODES.get(kind)
        if pattern is None:
            raise ScopeError(f"scope kind must be one of city, {', '.join(_CODES)}; got {kind!r}")
        if not pattern.match(code):
            raise ScopeError(f"scope {kind} code {code!r} must match {pattern.pattern}")
        return cls(kind, code)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.kind if self.code is None else f"{self.kind}:{self.code}"

    def sees_dimension(self, dimension: str) -> bool:
        if self.kind == "city":
            return True
        if self.kind == "department":
            return dimension == "department"
        return dimension in _BELOW[self.kind]

    def admits(self, dimension: str, value: str) -> bool:
        """May this scope see the row (dimension, value)?"""
        if not self.sees_dimension(dimension):
            return False
        if self.kind == "city":
            return True
        assert self.code is not None
        if self.kind == "department":
            return value == self.code
        return value.startswith(self.code)

    def admits_case(self, f: CaseFacts) -> bool:
        if self.kind == "city":
            return True
        if self.kind == "department":
            return self.code in f.departments
        own = {"district": f.district, "street": f.street, "grid": f.grid}[self.kind]
        return own == self.code

    def covers(self, other: Scope) -> bool:
        """Everything `other` sees, this scope sees too (a street covers its grids, not its district)."""
        if self.kind == "city":
            return True
        if self.kind == "department" or other.kind == "department":
            return self == other
        if other.kind == "city":
            return False
        assert self.code is not None and other.code is not None
        return other.code.startswith(self.code)


CITY = Scope("city")
# The city whose figures these are (GB/T 2260): only its own code, or its province's, is "the whole
# city"; another xxxx00 (Beijing's 110100, say) is some other city and holds nothing here.
CITY_CODE = "321000"
_WHOLE_CITY = frozenset({CITY_CODE, CITY_CODE[:2] + "0000"})
_BY_LENGTH: dict[int, ScopeKind] = {6: "district", 9: "street", 15: "grid"}


def entitled(divisions: tuple[str, ...], departments: tuple[str, ...], *, unrestricted: bool) -> list[Scope]:
    """The scopes a caller holds by its verified role: everything when unrestricted; one per
    division code that is this city or its province (the whole city), a district, street or grid
    (another city's or province's code: nothing); one per department. Community and micro-grid
    codes have no figures of their own."""
    if unrestricted:
        return [CITY]
    found: list[Scope] = []
    for code in divisions:
        if code in _WHOLE_CITY:
            found.append(CITY)
        elif len(code) == 6 and code.endswith("00"):
            continue  # another city or province
        elif len(code) in _BY_LENGTH:
            found.append(Scope(_BY_LENGTH[len(code)], code))
    found += [Scope("department", d) for d in departments]
    return list(dict.fromkeys(found))
