"""The one severity scale of every case: China's four levels, I (most severe) to IV.

Each network grades in its own terms (CAP severity and urgency, Chinese level texts, how far a
measurement exceeds its limit); the functions here translate each into ``Severity``. The rules are
documented in ``contracts/taxonomy/README.md`` and must change together with it.
"""

from __future__ import annotations

import math
import unicodedata
from enum import IntEnum

from intake.domain.errors import Quarantined

__all__ = ["Severity", "from_cap", "from_china_level", "from_exceedance_ratio"]


class Severity(IntEnum):
    """Level 1 = I 特别重大 red (most severe) ... 4 = IV 一般 blue. A smaller value is more severe."""

    I = 1  # noqa: E741 - the official name of the level
    II = 2
    III = 3
    IV = 4

    @property
    def roman(self) -> str:
        return self.name

    @property
    def zh(self) -> str:
        return _ZH[self]

    @property
    def en(self) -> str:
        return _EN[self]

    @property
    def color(self) -> str:
        return _COLOR[self]

    @property
    def color_zh(self) -> str:
        return _COLOR_ZH[self]

    def raised(self) -> Severity:
        """One level more severe; I stays I."""
        return Severity(max(1, self.value - 1))


_ZH = {Severity.I: "特别重大", Severity.II: "重大", Severity.III: "较大", Severity.IV: "一般"}
_EN = {
    Severity.I: "Particularly serious",
    Severity.II: "Serious",
    Severity.III: "Relatively serious",
    Severity.IV: "General",
}
_COLOR = {Severity.I: "red", Severity.II: "orange", Severity.III: "yellow", Severity.IV: "blue"}
_COLOR_ZH = {Severity.I: "红", Severity.II: "橙", Severity.III: "黄", Severity.IV: "蓝"}

_CAP_SEVERITY = {"extreme": Severity.I, "severe": Severity.II, "moderate": Severity.III}

# Spellings after normalisation (NFKC turns the Roman-numeral characters Ⅰ..Ⅳ into I..IV).
_CHINA_LEVEL: dict[str, Severity] = {
    spelling: level
    for level in Severity
    for spelling in (
        level.roman,
        str(level.value),
        "一二三四"[level.value - 1],
        level.zh,
        level.color_zh,
        level.color.upper(),
    )
}
# Decorations that official texts add around the level: "Ⅰ级", "红色预警", "重大事件", "二级响应".
_PREFIXES = ("LEVEL",)
_SUFFIXES = ("响应", "预警", "事件", "色", "级")


def from_cap(severity: str, urgency: str) -> Severity:
    """CAP 1.2 ``severity`` and ``urgency`` to Severity; total over all strings.

    Extreme -> I, Severe -> II, Moderate -> III, Minor, Unknown and anything unrecognised -> IV;
    then one level more severe when urgency is Immediate (I stays I). Matching ignores case and
    surrounding space, since CAP's values are fixed words.
    """
    level = _CAP_SEVERITY.get(severity.strip().casefold(), Severity.IV)
    return level.raised() if urgency.strip().casefold() == "immediate" else level


def from_china_level(text: str) -> Severity:
    """A Chinese level text to Severity.

    Accepts I/II/III/IV (ASCII or the Roman-numeral characters Ⅰ-Ⅳ), 1-4, 一/二/三/四, 红/橙/黄/蓝,
    red/orange/yellow/blue, 特别重大/重大/较大/一般, each optionally decorated as officials write them
    ("Ⅱ级", "二级响应", "红色预警", "较大事件", "Level III"), ignoring case, width and surrounding spaces.
    Total in the sense that every other text raises ``Quarantined("severity.unrecognized_level")``,
    never another exception: an unknown level needs a person, not a guess.
    """
    key = unicodedata.normalize("NFKC", text).upper().strip()
    for prefix in _PREFIXES:
        key = key.removeprefix(prefix).strip()
    stripped = True
    while stripped:
        stripped = False
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and key != suffix:
                key, stripped = key.removesuffix(suffix).strip(), True
    level = _CHINA_LEVEL.get(key)
    if level is None:
        raise Quarantined(
            "severity.unrecognized_level", f"level text {text!r} is not one of I-IV in any form"
        )
    return level


def from_exceedance_ratio(ratio: float) -> Severity:
    """Severity of a measurement ``ratio = value / limit``; total over all non-NaN floats.

    >= 3 -> II, >= 2 -> III, anything lower (including ratios below 1) -> IV. Never I: a reading
    alone is not a particularly serious event; that takes a confirmed incident. NaN is a caller's bug
    (a NaN measurement is not an exceedance) and raises ValueError.
    """
    if math.isnan(ratio):
        raise ValueError("exceedance ratio is NaN")
    if ratio >= 3.0:
        return Severity.II
    if ratio >= 2.0:
        return Severity.III
    return Severity.IV
