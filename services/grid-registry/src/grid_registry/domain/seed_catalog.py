"""The seeded organisation of 邗江区: departments, who handles which category, deadlines, station limits.

Department codes are lower-case ASCII (they name the topics dispatch.orders.<code>.v1). The table
`PRIMARY` gives every category of contracts/taxonomy/categories.v1.json its responsible department;
a unit test fails when the taxonomy gains a category this table lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

HANJIANG = "321003"


@dataclass(frozen=True, slots=True)
class DepartmentSeed:
    code: str
    name: str
    tier: str  # city | district | street
    division_code: str


DEPARTMENTS: tuple[DepartmentSeed, ...] = (
    DepartmentSeed("chengguan", "邗江区城市管理局", "district", HANJIANG),
    DepartmentSeed("shengtai", "扬州市邗江生态环境局", "district", HANJIANG),
    DepartmentSeed("yingji", "邗江区应急管理局", "district", HANJIANG),
    DepartmentSeed("gongan", "扬州市公安局邗江分局", "district", HANJIANG),
    DepartmentSeed("shichang", "邗江区市场监督管理局", "district", HANJIANG),
    DepartmentSeed("zhujian", "邗江区住房和城乡建设局", "district", HANJIANG),
    DepartmentSeed("shuiwu", "邗江区水务局", "district", HANJIANG),
    DepartmentSeed("xiaofang", "邗江区消防救援大队", "district", HANJIANG),
    DepartmentSeed("weijian", "邗江区卫生健康委员会", "district", HANJIANG),
    DepartmentSeed("minzheng", "邗江区民政局", "district", HANJIANG),
    DepartmentSeed("sifa", "邗江区司法局", "district", HANJIANG),
    DepartmentSeed("ziran", "扬州市自然资源和规划局邗江分局", "district", HANJIANG),
    DepartmentSeed("jiaotong", "邗江区交通运输局", "district", HANJIANG),
    DepartmentSeed("zhihui", "邗江区社会治理现代化指挥中心", "district", HANJIANG),
    # street tier: one enforcement team per street, acting where the street's grids are (属地)
    DepartmentSeed("jiedao_zhifa", "邗江区街道综合行政执法队", "street", HANJIANG),
)

PRIMARY: dict[str, tuple[str, ...]] = {
    "env.air.exceedance": ("shengtai",),
    "env.water.exceedance": ("shengtai", "shuiwu"),
    "env.noise.exceedance": ("shengtai",),
    "env.dust.exceedance": ("shengtai", "zhujian"),
    "env.monitoring.fault": ("shengtai",),
    "env.monitoring.silent": ("shengtai",),
    "env.pollution.incident": ("shengtai", "yingji"),
    "env.illegal_discharge": ("shengtai",),
    "emergency.fire": ("xiaofang",),
    "emergency.flood": ("shuiwu", "yingji"),
    "emergency.weather": ("yingji",),
    "emergency.geological": ("ziran", "yingji"),
    "emergency.hazmat": ("yingji", "shengtai"),
    "emergency.traffic_accident": ("gongan", "jiaotong"),
    "emergency.infrastructure": ("zhujian",),
    "emergency.public_health": ("weijian",),
    "emergency.other": ("yingji",),
    "safety.dispute": ("sifa",),
    "safety.public_order": ("gongan",),
    "safety.mass_incident": ("gongan",),
    "safety.work_safety": ("yingji",),
    "safety.fire_hazard": ("xiaofang",),
    "safety.key_person": ("gongan",),
    "city.road_damage": ("jiaotong",),
    "city.streetlight": ("chengguan",),
    "city.garbage": ("chengguan",),
    "city.illegal_parking": ("gongan",),
    "city.illegal_construction": ("chengguan",),
    "city.noise": ("chengguan",),
    "city.water_supply": ("shuiwu",),
    "city.drainage": ("shuiwu",),
    "city.facility_damage": ("chengguan",),
    "city.street_vending": ("chengguan",),
    "community.livelihood": ("minzheng",),
    "community.elderly_care": ("minzheng",),
    "community.housing": ("zhujian",),
    "community.sanitation": ("weijian",),
    "market.food_safety": ("shichang",),
    "market.consumer": ("shichang",),
    "other.unclassified": ("zhihui",),
}

# Handled by the street's enforcement team while the case is owned at street tier or below;
# the district bureau takes it when the case spans streets.
STREET_ENFORCED = frozenset(
    {"city.street_vending", "city.illegal_construction", "city.garbage", "city.noise", "city.facility_damage"}
)

# (code, name, match categories, severities, acknowledge s, resolve s, calendar)
SLA_POLICIES: tuple[tuple[str, str, tuple[str, ...], tuple[int, ...], int, int, str], ...] = (
    ("severity-1", "特别重大事件时限", (), (1,), 15 * 60, 4 * 3600, "24x7"),
    ("severity-2", "重大事件时限", (), (2,), 30 * 60, 12 * 3600, "24x7"),
    ("severity-3", "较大事件时限", (), (3,), 2 * 3600, 48 * 3600, "24x7"),
    ("severity-4", "一般事件时限（工作日）", (), (4,), 4 * 3600, 5 * 9 * 3600, "working_days"),
    (
        "emergency-any",
        "突发事件时限",
        tuple(c for c in PRIMARY if c.startswith("emergency.")),
        (),
        10 * 60,
        6 * 3600,
        "24x7",
    ),
    (
        "monitoring-fault",
        "监测设备故障时限",
        ("env.monitoring.fault", "env.monitoring.silent"),
        (),
        3600,
        86400,
        "24x7",
    ),
    ("streetlight-4", "路灯维修时限", ("city.streetlight",), (4,), 8 * 3600, 3 * 9 * 3600, "working_days"),
)

# 第一时间处置: the small problems of an ordinary (severity IV) case a grid worker may resolve on the
# spot (self_handle_categories of the policy); every other grid-tier case goes to its department.
SELF_HANDLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "severity-4": (
        "city.garbage",
        "city.street_vending",
        "city.illegal_parking",
        "community.sanitation",
        "safety.dispute",
    ),
}

# 2026 public holidays (国务院办公厅 notice), for the working-day calendar
# HJ 212 stations from contracts' conformance packets: (MN, ST, name)
KNOWN_STATIONS: tuple[tuple[str, str, str], ...] = (
    ("010000A8900016F000169DC0", "32", "HJ 212 附录A示例污染源"),
    ("JLYP01_AIR01_0001", "22", "邗江空气自动监测站1号"),
    ("Z13401000010301", "22", "邗江空气自动监测站2号"),
    ("LD130133000015", "32", "邗江污水处理厂排口"),
)
GENERATED_AIR_STATIONS = 10
GENERATED_WATER_STATIONS = 10

AIR_LIMITS = (
    ("a34004", 75, "μg/m³", "GB 3095-2012 二级 24小时平均"),
    ("a34002", 150, "μg/m³", "GB 3095-2012 二级 24小时平均"),
    ("a21026", 150, "μg/m³", "GB 3095-2012 二级 24小时平均"),
    ("a21004", 80, "μg/m³", "GB 3095-2012 二级 24小时平均"),
)
WATER_LIMITS = (
    ("w01018", 50, "mg/L", "GB 18918-2002 一级A"),
    ("w21003", 5, "mg/L", "GB 18918-2002 一级A"),
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅建国"
