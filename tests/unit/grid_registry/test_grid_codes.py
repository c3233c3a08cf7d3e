import pytest
from hypothesis import given
from hypothesis import strategies as st

from grid_registry.domain.codes import MalformedGridCode, make_grid_code, parse_grid_code


def test_parses_a_comprehensive_grid_code_into_division_codes() -> None:
    code = parse_grid_code("321003009001004")
    assert code.district == "321003"
    assert code.street_code == "321003009"
    assert code.community_code == "321003009001"
    assert code.sequence == "004"
    assert code.micro is None
    assert not code.is_special
    assert str(code) == "321003009001004"


def test_parses_a_micro_grid_code_and_names_its_grid() -> None:
    code = parse_grid_code("321003009001004002")
    assert code.micro == "002"
    assert code.grid_code == "321003009001004"


def test_sequences_from_901_are_special_grids() -> None:
    assert parse_grid_code("321003009001901").is_special


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("32100300900100A", "grid_code.not_digits"),
        ("３２１００３００９００１００４", "grid_code.not_digits"),
        ("3210030090010040", "grid_code.bad_length"),
        ("321003009", "grid_code.bad_length"),
        ("321000009001004", "grid_code.bad_district"),
        ("991003009001004", "grid_code.bad_district"),
        ("321003000001004", "grid_code.zero_part"),
        ("321003009000004", "grid_code.zero_part"),
        ("321003009001000", "grid_code.zero_part"),
        ("321003009001004000", "grid_code.zero_part"),
        ("321003009001901001", "grid_code.special_has_micro"),
    ],
)
def test_malformed_codes_are_refused_with_a_reason(code: str, reason: str) -> None:
    with pytest.raises(MalformedGridCode) as caught:
        parse_grid_code(code)
    assert caught.value.reason == reason
    assert code in caught.value.detail


@pytest.mark.parametrize(
    ("community", "sequence", "micro", "reason"),
    [
        ("32100300900", 1, None, "grid_code.bad_community"),
        ("321003009001", 0, None, "grid_code.part_out_of_range"),
        ("321003009001", 1000, None, "grid_code.part_out_of_range"),
        ("321003009001", 1, 0, "grid_code.part_out_of_range"),
        ("321003000001", 1, None, "grid_code.zero_part"),
        ("321003009001", 901, 1, "grid_code.special_has_micro"),
    ],
)
def test_make_refuses_what_parse_would_refuse(
    community: str, sequence: int, micro: int | None, reason: str
) -> None:
    with pytest.raises(MalformedGridCode) as caught:
        make_grid_code(community, sequence, micro)
    assert caught.value.reason == reason


@given(
    street=st.integers(1, 999),
    community=st.integers(1, 999),
    sequence=st.integers(1, 900),
    micro=st.one_of(st.none(), st.integers(1, 999)),
)
def test_make_and_parse_round_trip(street: int, community: int, sequence: int, micro: int | None) -> None:
    community_code = f"321003{street:03d}{community:03d}"
    code = make_grid_code(community_code, sequence, micro)
    parsed = parse_grid_code(code)
    assert str(parsed) == code
    assert parsed.community_code == community_code
    assert int(parsed.sequence) == sequence
    assert parsed.micro == (None if micro is None else f"{micro:03d}")
