"""HJ 212 code tables: commands, data flags and the 2005 → 2017 pollutant code map.

The 2005 edition (HJ/T 212-2005) numbered pollutants per medium ("011" COD in water, "02" SO2 in
flue gas); HJ 212-2017 Appendix B replaced them with medium-prefixed codes ("w01018", "a21026").
Only codes whose 2017 successor is unambiguous are mapped; anything else is kept as sent.
The 2005 "converted" variants ("02z") are not mapped: 2017 expresses them as a ``-ZsRtd`` field,
which is a change of field, not of code.
"""

from collections.abc import Mapping
from typing import Final

# Commands that carry measurements (CN): real-time, minute, hourly, daily data.
DATA_COMMANDS: Final = frozenset({"2011", "2051", "2061", "2031"})

# Data flags of HJ 212-2017 §6.6.4 (also used by the 2005 edition).
FLAG_NORMAL: Final = "N"
FLAG_FAULT: Final = "D"
FLAG_COMMUNICATION_FAULT: Final = "B"
FLAG_OVER_RANGE: Final = "T"
FAULT_FLAGS: Final = frozenset({FLAG_FAULT, FLAG_COMMUNICATION_FAULT})
# F stopped, M maintenance, S manual setting, C calibration (and any flag the standard does not name):
# the value is not a measurement of the medium, so it neither breaches a limit nor counts as normal.
MEASURING_FLAGS: Final = frozenset({None, FLAG_NORMAL, FLAG_OVER_RANGE})


def item_field(fields: Mapping[str, str], suffix: str) -> str | None:
    """The value of a CP item's field ``suffix`` (``Avg``, ``Flag``...) whatever the letter case it was
    sent in: devices send ``-flag`` as often as the standard's ``-Flag``, with the same meaning."""
    if suffix in fields:
        return fields[suffix]
    folded = suffix.casefold()
    return next((value for key, value in fields.items() if key.casefold() == folded), None)


def data_flag(fields: Mapping[str, str]) -> str | None:
    """The item's data flag as the standard's upper-case letter (``d`` and ``D`` both mean fault)."""
    flag = item_field(fields, "Flag")
    return None if flag is None else flag.strip().upper()


POLLUTANT_CODES_2005_TO_2017: Final[dict[str, str]] = {
    # water (HJ/T 212-2005 Table: 污水 / 水污染物)
    "B01": "w00000",  # wastewater flow
    "001": "w01001",  # pH
    "011": "w01018",  # chemical oxygen demand (COD)
    "060": "w21003",  # ammonia nitrogen
    "065": "w21001",  # total nitrogen
    "101": "w21011",  # total phosphorus
    # flue gas (HJ/T 212-2005 Table: 废气 / 大气污染物)
    "B02": "a00000",  # flue gas flow
    "01": "a34013",  # smoke dust (particulates)
    "02": "a21026",  # sulphur dioxide
    "03": "a21002",  # nitrogen oxides
    "04": "a21005",  # carbon monoxide
    "S01": "a19001",  # oxygen content
    "S02": "a01011",  # flue gas velocity
    "S03": "a01012",  # flue gas temperature
    "S05": "a01014",  # flue gas humidity
    "S08": "a01013",  # flue gas pressure
}


def pollutant_code_2017(code: str) -> str:
    """The HJ 212-2017 code for ``code``; codes without a known 2005 mapping are returned unchanged."""
    return POLLUTANT_CODES_2005_TO_2017.get(code, code)
