"""`python -m simulators demo`: a scripted day, compressed to a minute or two, against the running
system (`make up`). It prints what it does and what it observes, and exits 0 only if all five
happened:

1. 多网合一: one fire reported by three networks (CAP Fire, 综治 0302, 民情日记 MQ05) is one case;
2. 吹哨: a department that stays silent is whistled at: the acknowledge deadline fires and the case
   is escalated (case.lifecycle.v1, reason `sla.acknowledge_overdue`);
3. 退单: a department returns a case with a structured reason; the command centre then arbitrates it
   to the department the return suggested;
4. 返工: the grid worker's on-site check of a resolved case fails; the case goes back to the
   department (rework), is resolved again and closed;
5. 第一时间处置: a grid worker's patrol report (the phone app's calls to the console: a photo, then
   the report on the patrol feed) becomes a case left to the grid; the worker handles it on the spot
   with before and after photos (their refs in the lifecycle event), and someone else, the
   community, verifies it: closed.

Short deadlines: the seed's SLAs are hours long, so the demo writes one SLA policy through the
registry API (`PUT /v1/records/sla_policy/demo-short-ack`: category safety.dispute, severity III,
acknowledge within 20 s), waits until it is on grid.registry.v1 (dispatch's registry view follows
that topic), and deletes it at the end. While the demo runs, every severity III dispute in the city
has that 20 s deadline. Demo cases carry DEMO_MARK in their titles: the background simulators leave
them to the demo, which answers their orders itself (Kafka feedback) and acts as grid worker and
command centre through dispatch's API.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from intake.domain.coords import haversine_m
from onegrid.kafka.producer import make_producer
from onegrid.topics import DISPATCH_FEEDBACK, GRID_REGISTRY
from simulators.bridged import Pusher
from simulators.departments import kafka_sender
from simulators.domain import formats
from simulators.domain.answers import DEMO_MARK, Step, evidence, feedback
from simulators.domain.city import Place, reference_city
from simulators.domain.networks import Networks, run_tag
from simulators.endpoints import Endpoints
from simulators.gateway import TOPICS
from simulators.patrol import Spot, file_report, photo, upload
from simulators.running import Tally
from simulators.watch import Watch

SLA_CODE = "demo-short-ack"
# The demo's patrol: a grid of the reference seed (军桥村委会第4网格) and a point inside it.
PATROL_SPOT = Spot("321003103210004", 32.3942, 119.4129)
GRID_WORKER = {"kind": "staff", "id": "demo/grid-worker", "display": "网格员"}
COMMUNITY = {"kind": "staff", "id": "demo/community", "display": "社区"}
DEMO_SLA = {
    "name": "演示：短时签收时限",
    "active": True,
    "match": {"category_codes": ["safety.dispute"], "severity_levels": [3]},
    "acknowledge_within_s": 20,
    "resolve_within_s": 900,
    "calendar": "24x7",
}
Json = dict[str, Any]


class Script:
    """The demo's departments, grid worker and command centre: each case answered as its scenario
    says. Orders and lifecycle events arrive from the watch; answers leave as tasks."""

    def __init__(
        self, watch: Watch, send: Any, http: httpx.AsyncClient, dispatch: str, console: str = ""
    ) -> None:
        self.watch, self.send, self.http, self.dispatch = watch, send, http, dispatch
        self.console = console
        self.sources: dict[str, list[tuple[str, str]]] = {}  # scenario -> its (network, source id)s
        self.started = time.monotonic()
        self._answered: set[str] = set()
        self._seen_events: set[str] = set()
        self._resolves: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def case(self, scenario: str) -> str | None:
        ids = {self.watch.case_of.get(s) for s in self.sources.get(scenario, [])}
        return next(iter(ids)) if len(ids) == 1 and None not in ids else None

    def scenario_of(self, case_id: str) -> str | None:
        return next((s for s in self.sources if self.case(s) == case_id), None)

    def pulse(self) -> None:
        """Answer whatever is waiting: orders and events of cases whose scenario is now known."""
        for case_id, orders in list(self.watch.orders.items()):
            for order in orders:
                if order["order_id"] not in self._answered and self.scenario_of(case_id):
                    self._answered.add(order["order_id"])
                    self._spawn(self._answer(self.scenario_of(case_id) or "", order))
        for case_id, events in list(self.watch.lifecycle.items()):
            scenario = self.scenario_of(case_id)
            for e in events:
                if scenario and e["event_id"] not in self._seen_events:
                    self._seen_events.add(e["event_id"])
                    self._observe(scenario, e)

    def _observe(self, scenario: str, e: Json) -> None:
        dept = e["dimensions"].get("department")
        why = f" ({e['reason']})" if e.get("reason") else ""
        self.say(f"{scenario}: {e['from_state']} -> {e['to_state']} by {e['action']}{why}, department {dept}")
        if scenario == "patrol" and e["to_state"] == "registered" and dept is None:
            self._spawn(self._act(scenario, e["case_id"], "self_handle", e["event_id"]))
        elif e["to_state"] == "resolved":
            n = self._resolves[scenario] = self._resolves.get(scenario, 0) + 1
            fail = scenario == "rework" and n == 1
            self._spawn(self._act(scenario, e["case_id"], "rework" if fail else "verify", e["event_id"]))
        elif e["to_state"] == "returned":
            self._spawn(self._act(scenario, e["case_id"], "arbitrate", e["event_id"]))

    async def _answer(self, scenario: str, order: Json) -> None:
        dept = order["department"]
        self.say(f"{scenario}: order {order['kind']} to {dept} (hop {order['hop']})")
        steps: list[Step] = []
        # Which of the case's orders this is, in the order they arrived.
        position = [o["order_id"] for o in self.watch.orders[order["case_id"]]].index(order["order_id"])
        full = [
            Step(1, "acknowledge"),
            Step(2, "progress", note="已到场。"),
            Step(3, "resolve", note="处置完毕。"),
        ]
        if scenario == "silent":
            self.say(f"silent: {dept} does not answer")
        elif scenario == "return" and position == 0:
            reason = {
                "code": "return.not_our_duty",
                "suggested_department": "zhihui",
                "detail": "不属本单位职责，建议指挥中心协调。",
            }
            steps = [Step(1, "acknowledge"), Step(2, "return", reason)]
        elif scenario == "rework" and position > 0:
            steps = [Step(1, "progress", note="返工整改中。"), Step(2, "resolve", note="已按核查意见整改。")]
        elif scenario == "fire" and position > 0:
            steps = [Step(1, "acknowledge")]  # the other departments called in report for duty
        else:
            steps = full
        waited = 0.0
        for step in steps:
            await asyncio.sleep(step.after_s - waited)
            waited = step.after_s
            outcome = await self.send(feedback(order, step, datetime.now(UTC)))
            self.say(f"{scenario}: {dept} {step.kind} ({outcome})")

    async def _act(self, scenario: str, case_id: str, action: str, event_id: str) -> None:
        await asyncio.sleep(1)
        body: Json = {"actor": GRID_WORKER}
        if action == "self_handle":
            shots = [await upload(self.http, self.console, photo(n)) for n in (1, 2)]  # before, after
            refs = [f"photos/{s['sha256'][:2]}/{s['sha256']}.png" for s in shots]
            body.update(reason="self_handle.on_spot", note="网格员现场清理完毕。", evidence=refs)
            self.say(f"{scenario}: before/after photos {', '.join(s['sha256'][:12] for s in shots)}")
        elif action == "verify" and scenario == "patrol":  # never the one who handled it
            body.update(actor=COMMUNITY, note="社区核查通过。")
        elif action == "rework":
            body.update(reason="verify.failed", note="现场核查未整改到位。")
        elif action == "verify":
            body.update(
                note="现场核查通过。", evidence=[evidence(case_id, "verify", datetime.now(UTC))["ref"]]
            )
        else:
            body.update(
                actor={"kind": "staff", "id": "zhihui/operator", "display": "指挥中心"}, department="zhihui"
            )
        resp = await self.http.post(
            f"{self.dispatch}/v1/cases/{case_id}/{action}",
            json=body,
            headers={"Idempotency-Key": f"demo:{event_id}"},
        )
        self.say(f"{scenario}: POST {action} -> {resp.status_code} {resp.json().get('outcome', '')}")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def far_apart(
    places: tuple[Place, ...], n: int, rng: np.random.Generator, min_m: float = 4000
) -> list[Place]:
    """`n` places pairwise at least `min_m` apart: no correlation window joins two scenarios."""
    chosen: list[Place] = []
    for _ in range(10_000):
        p = places[int(rng.integers(len(places)))]
        if all(haversine_m(p.lat, p.lon, q.lat, q.lon) >= min_m for q in chosen):
            chosen.append(p)
            if len(chosen) == n:
                return chosen
    raise RuntimeError(f"cannot find {n} places {min_m} m apart")


async def run_demo(endpoints: Endpoints, *, timeout_s: float, seed: int) -> int:
    city = await asyncio.to_thread(reference_city)
    rng = np.random.default_rng(seed)
    fire_at, silent_at, return_at, rework_at = far_apart(city.places, 4, rng)
    start = datetime.now(UTC)
    tag, ids = run_tag(seed, start), Networks(city, seed, start)
    registry, dispatch = endpoints.url("grid-registry"), endpoints.url("dispatch")
    watch = Watch(endpoints.kafka)
    await watch.start()
    producer = make_producer(endpoints.kafka, client_id="onegrid-simulators-demo")
    await producer.start()
    http = httpx.AsyncClient(timeout=10.0, headers=endpoints.headers())
    console = endpoints.url("console")
    script = Script(watch, kafka_sender(producer, DISPATCH_FEEDBACK), http, dispatch, console)
    watch.on_order = watch.on_lifecycle = lambda _: script.pulse()
    deadline = time.monotonic() + timeout_s

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    pusher = Pusher(endpoints.url("bridges"), Tally("demo"), fallback_headers=endpoints.headers())

    async def publish(feed: str, key: str, value: bytes, network: str, source_id: str, scenario: str) -> None:
        # Through the bridges, as the networks send (CAP by the push endpoint: no hub to wait on).
        status = await pusher.push(feed, value)
        if status != 202:
            raise RuntimeError(f"the bridges answered {status} to the {feed} record {source_id}")
        script.sources.setdefault(scenario, []).append((network, source_id))
        script.say(
            f"{scenario}: {feed} record {source_id} taken in by the bridges ({TOPICS[feed]}, key {key})"
        )

    async def safety(scenario: str, code: str, place: Place, title: str) -> None:
        sid = ids.safety_id(datetime.now(UTC))
        doc = formats.safety_event(sid, code=code, level="较大", wgs=place.wgs, when=datetime.now(UTC),
                                   title=DEMO_MARK + title, description=title, address=place.address)  # fmt: skip
        await publish("safety", sid, doc, "safety", sid, scenario)

    happened: dict[str, bool] = {}
    try:
        resp = await http.put(f"{registry}/v1/records/sla_policy/{SLA_CODE}", json=DEMO_SLA)
        resp.raise_for_status()
        script.say(f"SLA policy {SLA_CODE} (acknowledge within 20 s) at revision {resp.json()['revision']}")
        if not await watch.until(lambda: f"sla_policy:{SLA_CODE}" in watch.registry_keys, left()):
            script.say(f"the SLA policy never reached {GRID_REGISTRY}")
        await asyncio.sleep(3)  # dispatch's registry view follows that topic

        ident, now = f"YZDEMO-{tag}-1", datetime.now(UTC)
        cap = formats.cap_alert(ident, category="Fire", event="火灾", severity="Severe", urgency="Expected",
                                centre=fire_at.wgs, radius_km=0.3, sent=now.astimezone(formats.BEIJING).replace(microsecond=0),
                                headline=DEMO_MARK + "商铺火灾", area_desc=fire_at.address)  # fmt: skip
        await publish("cap", formats.CAP_SENDER, cap, "emergency", f"{formats.CAP_SENDER},{ident}", "fire")
        await watch.until(lambda: script.case("fire"), left())
        await safety("fire", "0302", fire_at, "商铺电动车充电起火")
        rjbh = f"MQRJDEMO{tag}1"
        diary = formats.party_diary(rjbh, code="MQ05", wgs=fire_at.wgs, when=datetime.now(UTC),
                                    title=DEMO_MARK + "东门商铺冒烟", address=fire_at.address)  # fmt: skip
        await publish("party", rjbh, diary, "party", rjbh, "fire")
        await safety("silent", "0102", silent_at, "楼上漏水引发邻里纠纷")
        await safety("return", "0201", return_at, "小区夜间多次发生撬锁")
        await safety("rework", "0301", rework_at, "小作坊违规存放液化气罐")
        report_id = await file_report(http, console, PATROL_SPOT, category="city.garbage",
                                      text=DEMO_MARK + "路边垃圾堆放\n路口东侧约三袋生活垃圾。", photo_seed=int(time.time()))  # fmt: skip
        script.sources.setdefault("patrol", []).append(("patrol", report_id))
        script.say(f"patrol: report {report_id} filed through the console's worker app API")

        def saw(scenario: str, test: Any) -> bool:
            case_id = script.case(scenario)
            return bool(case_id) and any(test(e) for e in watch.lifecycle.get(case_id or "", []))

        checks = {
            "fire": lambda: script.case("fire") is not None and len(script.sources["fire"]) == 3,
            "silent": lambda: saw("silent", lambda e: e["to_state"] == "escalated"),
            "return": lambda: saw("return", lambda e: e["to_state"] == "returned"),
            "rework": lambda: saw("rework", lambda e: e["action"] == "rework"),
            "patrol": lambda: saw("patrol", lambda e: e["action"] == "self_handle"),
        }
        for name, check in checks.items():
            happened[name] = bool(await watch.until(check, left()))
        # Let the loops close (not required): every demo case but the silent one verified and closed.
        closed = [n for n in checks if n != "silent"]
        await watch.until(
            lambda: all(saw(n, lambda e: e["to_state"] == "closed") for n in closed), min(30.0, left())
        )
    finally:
        script.pulse()
        try:
            await http.delete(f"{registry}/v1/records/sla_policy/{SLA_CODE}")
        except httpx.HTTPError:
            pass
        await script.close()
        await watch.stop()
        await producer.stop()
        await pusher.close()
        await http.aclose()
    print("\nWhat happened:")
    for name in ("fire", "silent", "return", "rework", "patrol"):
        case_id = script.case(name) or "-"
        path = " -> ".join(
            e["to_state"] for e in sorted(watch.lifecycle.get(case_id, []), key=lambda e: e["seq"])
        )
        print(
            f"  {'OK  ' if happened.get(name) else 'MISS'} {name:7} case {case_id}: {path or 'no lifecycle'}"
        )
    return 0 if len(happened) == 5 and all(happened.values()) else 1
