import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.domain.crosswalk import Crosswalk, Network, Taxonomy
from intake.domain.errors import Quarantined

REPO = Path(__file__).resolve().parents[3]
TAXONOMY_FILE = REPO / "contracts" / "taxonomy" / "categories.v1.json"
GBT35561 = {"natural_disaster", "accident_disaster", "public_health", "social_safety"}


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load()


@pytest.fixture(scope="module")
def crosswalk(taxonomy) -> Crosswalk:
    return Crosswalk.load(taxonomy=taxonomy)


def test_taxonomy_is_versioned_two_level_with_bilingual_names(taxonomy):
    assert taxonomy.version == "2026.1"
    assert 30 <= len(taxonomy.categories) <= 45
    for code, category in taxonomy.categories.items():
        assert category.code == code and code.split(".")[0] == category.group
        assert category.zh and category.en and category.family
        assert category.gbt35561 is None or category.gbt35561 in GBT35561


def test_taxonomy_found_from_the_repo_root_equals_the_explicit_path(taxonomy):
    assert Taxonomy.load(TAXONOMY_FILE) == taxonomy


def test_taxonomy_refuses_a_category_with_an_undeclared_family(tmp_path):
    doc = json.loads(TAXONOMY_FILE.read_text(encoding="utf-8"))
    doc["groups"][0]["categories"][0]["family"] = "nonsense"
    bad = tmp_path / "categories.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="nonsense"):
        Taxonomy.load(bad)


def test_every_crosswalk_target_exists_in_the_taxonomy(crosswalk, taxonomy):
    targets = crosswalk.targets()
    assert len(targets) > 40
    assert set(targets) <= set(taxonomy.categories)


def test_crosswalk_refuses_to_load_against_a_taxonomy_missing_a_target(taxonomy):
    smaller = Taxonomy(
        version="test",
        categories={c: v for c, v in taxonomy.categories.items() if c != "emergency.flood"},
    )
    with pytest.raises(ValueError, match=r"emergency\.flood"):
        Crosswalk.load(taxonomy=smaller)


def test_crosswalk_version_and_the_latest_is_the_default(crosswalk, taxonomy):
    assert crosswalk.version == "1"
    assert crosswalk.taxonomy_version == taxonomy.version
    assert Crosswalk.load("1", taxonomy=taxonomy).version == "1"
    with pytest.raises(FileNotFoundError):
        Crosswalk.load(99, taxonomy=taxonomy)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("exceedance:22:a34004", "env.air.exceedance"),
        ("exceedance:22:a21026", "env.air.exceedance"),
        ("exceedance:31:a21002", "env.air.exceedance"),
        ("exceedance:32:w01018", "env.water.exceedance"),
        ("exceedance:21:w21003", "env.water.exceedance"),
        ("exceedance:23:LA", "env.noise.exceedance"),
        ("exceedance:39:a34002", "env.dust.exceedance"),
        ("exceedance:39:LA", "env.noise.exceedance"),  # more specific than exceedance:39:*
        ("fault:22:a34004", "env.monitoring.fault"),
        ("fault:32:w01018", "env.monitoring.fault"),
        ("silence:22:*", "env.monitoring.silent"),
        ("silence:91:-", "env.monitoring.silent"),
    ],
)
def test_env_patterns_most_specific_wins(crosswalk, code, expected):
    assert crosswalk.map(Network.ENV, code).code == expected


@pytest.mark.parametrize(
    "code", ["exceedance:91:a34004", "exceedance:22", "exceedance:22:a34004:x", "overflow:22:a34004", ""]
)
def test_env_codes_no_pattern_covers_are_quarantined(crosswalk, code):
    with pytest.raises(Quarantined) as info:
        crosswalk.map("env", code)
    assert info.value.reason == "crosswalk.unmapped_code"
    assert "'env'" in info.value.detail and repr(code) in info.value.detail


@pytest.mark.parametrize(
    ("cap_category", "event", "expected"),
    [
        ("Fire", "Forest fire", "emergency.fire"),
        ("Met", "Flash Flood Warning", "emergency.flood"),
        ("Met", "暴雨红色预警", "emergency.flood"),
        ("Met", "山洪灾害气象预警", "emergency.flood"),
        ("Met", "thunderstorm", "emergency.weather"),  # conformance/cap/canada.cap
        ("Met", "SEVERE THUNDERSTORM", "emergency.weather"),
        ("Met", "Storm", "emergency.weather"),
        ("Met", "台风蓝色预警", "emergency.weather"),
        ("Geo", "Earthquake", "emergency.geological"),
        ("Geo", "Tsunami", "emergency.flood"),
        ("CBRNE", "Chemical leak", "emergency.hazmat"),
        ("Infra", "水庫洩洪", "emergency.flood"),  # conformance/cap/taiwan.cap
        ("Infra", "水库泄洪预警", "emergency.flood"),
        ("Infra", "Reservoir release", "emergency.flood"),
        ("Infra", "Dam failure", "emergency.flood"),
        ("Infra", "Road damage", "emergency.infrastructure"),  # "dam" is a whole word, not a prefix
        ("Infra", "Power outage", "emergency.infrastructure"),
        ("Health", "群体性食物中毒", "market.food_safety"),
        ("Health", "Influenza outbreak", "emergency.public_health"),
        ("Env", "River pollution", "env.pollution.incident"),
        ("Transport", "Train derailment", "emergency.traffic_accident"),
        ("Security", "Civil unrest", "safety.public_order"),
        ("Other", "Unspecified", "emergency.other"),
    ],
)
def test_emergency_cap_category_with_event_keywords(crosswalk, cap_category, event, expected):
    assert crosswalk.map(Network.EMERGENCY, cap_category, hints={"event": event}).code == expected


def test_emergency_without_event_hint_uses_the_category_rule(crosswalk):
    assert crosswalk.map("emergency", "Met").code == "emergency.weather"


@pytest.mark.parametrize("cap_category", ["met", "Weather", ""])
def test_emergency_unknown_cap_categories_are_quarantined_never_guessed(crosswalk, cap_category):
    with pytest.raises(Quarantined, match=r"crosswalk\.unmapped_code") as info:
        crosswalk.map("emergency", cap_category, hints={"event": "flood"})
    assert "'flood'" in info.value.detail


def test_safety_table_has_chinese_names_and_maps(crosswalk):
    table = {e.code: e for e in crosswalk.code_table("safety")}
    assert table["0101"].zh == "矛盾纠纷" and table["0101"].category == "safety.dispute"
    assert table["0201"].zh == "治安隐患"
    assert table["0301"].zh == "安全生产隐患"
    assert table["0401"].zh == "重点人员动态"
    assert crosswalk.map("safety", "0401").code == "safety.key_person"
    assert all(len(code) == 4 and code.isdigit() for code in table)


def test_party_diary_kinds(crosswalk):
    assert crosswalk.map("party", "MQ01").code == "community.livelihood"
    assert crosswalk.map("party", "MQ02").code == "safety.dispute"
    assert crosswalk.map("party", "MQ05").code == "emergency.fire"
    assert [e.zh for e in crosswalk.code_table(Network.PARTY)][:5] == [
        "民生诉求",
        "矛盾调解",
        "安全隐患",
        "环境卫生",
        "火情",
    ]


def test_open311_services_are_what_get_services_lists(crosswalk):
    services = crosswalk.open311_services()
    assert [s.service_code for s in services][:6] == ["001", "002", "003", "004", "005", "006"]
    by_code = {s.service_code: s for s in services}
    assert by_code["001"].service_name == "Pothole" and by_code["001"].category == "city.road_damage"
    assert by_code["006"].category == "city.water_supply"
    assert all(s.description and s.zh and s.type == "realtime" and s.metadata is False for s in services)
    assert {s.service_code for s in services} == {e.code for e in crosswalk.code_table("open311")}
    for service in services:
        assert crosswalk.map("open311", service.service_code).code == service.category


@pytest.mark.parametrize(
    ("network", "code"), [("safety", "101"), ("safety", "0101 "), ("party", "mq01"), ("open311", "1")]
)
def test_table_codes_match_exactly(crosswalk, network, code):
    with pytest.raises(Quarantined, match=r"crosswalk\.unmapped_code"):
        crosswalk.map(network, code)


def test_unknown_network_is_a_programming_error(crosswalk):
    with pytest.raises(ValueError):
        crosswalk.map("hotline", "001")


@given(network=st.sampled_from(list(Network)), code=st.text(max_size=30), event=st.text(max_size=30))
def test_map_returns_a_taxonomy_category_or_quarantines(crosswalk, taxonomy, network, code, event):
    try:
        category = crosswalk.map(network, code, hints={"event": event})
    except Quarantined as exc:
        assert exc.reason == "crosswalk.unmapped_code"
    else:
        assert taxonomy[category.code] == category
