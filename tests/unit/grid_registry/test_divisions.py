from pathlib import Path

import pytest
from support.deploy import load_script

from grid_registry.domain.divisions import divisions_from_records, load_divisions

_extract_script = load_script("services/grid-registry/tools/extract_divisions.py")
extract, render = _extract_script.extract, _extract_script.render

CODE_LENGTH = {"city": 6, "district": 6, "street": 9, "community": 12}


def test_vendored_data_has_hanjiang_and_xinsheng() -> None:
    tree = load_divisions()
    assert tree["321000"].name == "扬州市"
    assert (tree["321003"].name, tree["321003"].level) == ("邗江区", "district")
    assert (tree["321003009"].name, tree["321003009"].parent) == ("新盛街道", "321003")


def test_every_code_has_its_level_length_and_starts_with_its_parent() -> None:
    tree = load_divisions()
    assert {d.level for d in tree} == set(CODE_LENGTH)
    for division in tree:
        assert len(division.code) == CODE_LENGTH[division.level], division
        if division.level in ("street", "community"):
            assert division.code.startswith(division.parent), division


def test_yangzhou_has_seven_districts_and_all_their_units() -> None:
    tree = load_divisions()
    assert len(tree.children_of("321000")) == 7
    assert len(tree.children_of("321003")) == 21
    assert sum(1 for d in tree.descendants_of("321003") if d.level == "community") == 177
    assert len(tree) == 1 + 7 + 98 + 1437


def test_a_child_of_a_missing_parent_is_refused() -> None:
    with pytest.raises(ValueError, match="missing parent"):
        divisions_from_records(
            [{"code": "321003009", "name": "新盛街道", "level": "street", "parent": "321003"}]
        )


def test_extraction_keeps_only_yangzhou_and_widens_the_city_code(tmp_path: Path) -> None:
    files = {
        "cities": "code,name,provinceCode\n3210,扬州市,32\n3201,南京市,32\n",
        "areas": "code,name,cityCode,provinceCode\n321003,邗江区,3210,32\n320102,玄武区,3201,32\n",
        "streets": "code,name,areaCode,provinceCode,cityCode\n321003009,新盛街道,321003,32,3210\n",
        "villages": "code,name,streetCode,provinceCode,cityCode,areaCode\n"
        "321003009002,新盛社区,321003009,32,3210,321003\n320102001001,某社区,320102001,32,3201,320102\n",
    }
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    records = extract(tmp_path)
    assert [(r["code"], r["parent"]) for r in records] == [
        ("321000", "320000"),
        ("321003", "321000"),
        ("321003009", "321003"),
        ("321003009002", "321003009"),
    ]
    assert "扬州市" in render(records)
