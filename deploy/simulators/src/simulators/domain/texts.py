"""What people write in each network: titles and descriptions per source code (background traffic).

Fire codes (safety 0302, party MQ05) and the CAP Fire category are left to planned incidents, so
that a fire case in the system is always one the simulator meant to be seen by several networks.
"""

from __future__ import annotations

# 综治 事件类型代码 -> (title, description)
SAFETY: dict[str, tuple[str, str]] = {
    "0101": ("两户居民因停车位发生争执", "双方在楼下争吵，情绪激动，需调解。"),
    "0102": ("楼上漏水引发邻里纠纷", "3栋502室漏水至402室，双方多次协商未果。"),
    "0104": ("工地拖欠务工人员工资", "十余名务工人员聚集在项目部门口讨薪。"),
    "0106": ("业主与物业因收费发生纠纷", "物业停车费上调，部分业主拒缴并与物业争执。"),
    "0201": ("小区夜间多次发生撬锁", "近一周两栋楼电动车车库被撬，居民担忧。"),
    "0301": ("小作坊违规存放液化气罐", "沿街门面内存放十余只液化气罐，无防护措施。"),
    "0304": ("无证小吃摊卫生条件差", "学校门口流动摊点食品无遮盖，存在安全隐患。"),
    "0401": ("重点人员近期行为异常", "网格员走访发现其情绪不稳，建议关注。"),
}
SAFETY_INCIDENT = ("商铺电动车违规充电起火", "楼梯间冒烟，群众报告，已拨打119。")

# 民情日记 sjlx -> (sjbt, sjnr)
PARTY: dict[str, tuple[str, str]] = {
    "MQ01": ("老旧小区加装电梯诉求", "走访时多户老人反映上下楼困难，希望加装电梯。"),
    "MQ02": ("邻里因装修噪声产生矛盾", "装修噪声持续到晚上九点，邻居多次投诉。"),
    "MQ03": ("楼道堆放杂物存在隐患", "楼道内堆放纸箱和旧家具，影响通行。"),
    "MQ04": ("河道漂浮垃圾较多", "小区旁河道漂浮塑料袋、泡沫，气味明显。"),
    "MQ07": ("独居老人需要上门照料", "八旬独居老人行动不便，需要助餐服务。"),
    "MQ08": ("夜间有陌生人徘徊", "居民反映夜间有陌生人在车库附近徘徊。"),
    "MQ09": ("其他民情", "居民对社区活动安排提出建议。"),
}
PARTY_INCIDENT = ("小区东门冒烟", "走访时发现东门商铺冒烟，已疏散围观群众。")

# Open311 service_code -> description (codes of the intake crosswalk, network open311)
OPEN311: dict[str, str] = {
    "001": "路面有一处坑洼，雨天积水，车辆经过颠簸。",
    "002": "路灯连续三晚不亮。",
    "003": "垃圾桶满溢，两天未清运。",
    "004": "车辆长期占用人行道停放。",
    "005": "夜间施工噪声扰民。",
    "006": "路边供水管道漏水。",
    "007": "下水道堵塞，路面积水。",
    "008": "楼顶搭建违章建筑。",
    "009": "井盖缺失，存在安全隐患。",
    "010": "摊贩占道经营，影响通行。",
    "011": "有人露天焚烧垃圾，烟味很大。",
    "012": "餐馆后厨卫生状况差。",
    "013": "独居老人需要探访。",
    "014": "物业不及时维修电梯。",
    "016": "其他诉求，请指挥中心处理。",
}

# CAP Met events of the background: (event, headline); 暴雨 maps to emergency.flood, 大风 to weather.
CAP_MET: tuple[tuple[str, str], ...] = (
    ("暴雨", "邗江区气象台发布暴雨黄色预警"),
    ("大风", "邗江区气象台发布大风蓝色预警"),
)
