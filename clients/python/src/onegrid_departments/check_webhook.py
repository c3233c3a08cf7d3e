"""Conformance check of a department's webhook endpoint against the contract
(contracts/departments/README.md, "Webhooks").

    python -m onegrid_departments.check_webhook URL --secret SECRET [--department CODE]

Sends signed test orders and reports, case by case, whether the endpoint answered as the contract says:

| case              | sent                                                        | expected |
|-------------------|-------------------------------------------------------------|----------|
| valid             | a fresh order, correctly signed                             | 2xx      |
| duplicate         | the same delivery id again, freshly signed (a retry)        | 2xx      |
| bad_signature     | a fresh order signed with another secret                    | 401      |
| replayed          | the valid request's signature under a new timestamp         | 401      |
| replayed_new_id   | the valid request as captured, under a new delivery id      | 401      |
| stale_timestamp   | correctly signed, timestamp 10 minutes ago                  | 401      |
| future_timestamp  | correctly signed, timestamp 10 minutes ahead                | 401      |
| unsigned          | no signature headers                                        | 401      |
| not_an_order      | correctly signed body that is not an order                  | 4xx      |

Exit status 0 when every case passed, 1 otherwise, 2 when the endpoint cannot be reached. The test
orders are clearly marked (title `CONFORMANCE TEST`, category `test.conformance`) so a department can
recognise and drop them. Uses the endpoint's department from the last URL path segment unless given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from onegrid_departments.signature import DELIVERY, SIGNATURE, TIMESTAMP, sign

OFFSET_S = 600


@dataclass(frozen=True)
class CaseResult:
    name: str
    expected: str
    status: int | None
    passed: bool
    detail: str = ""

    def line(self) -> str:
        got = "no answer" if self.status is None else str(self.status)
        return f"{'PASS' if self.passed else 'FAIL'} {self.name:<17} expected {self.expected:<4} got {got} {self.detail}".rstrip()


def sample_order(department: str) -> dict[str, Any]:
    """A well-formed order (dispatch-order.v1.json) marked as a conformance test."""
    now = datetime.now(UTC).replace(microsecond=0)

    def z(t: datetime) -> str:
        return t.isoformat().replace("+00:00", "Z")

    return {
        "order_id": str(uuid.uuid4()),
        "case_id": str(uuid.uuid4()),
        "department": department,
        "hop": 1,
        "kind": "assign",
        "issued_at": z(now),
        "deadlines": {
            "acknowledge_by": z(now + timedelta(minutes=30)),
            "resolve_by": z(now + timedelta(days=1)),
        },
        "case": {
            "title": "CONFORMANCE TEST",
            "description": "Sent by onegrid_departments.check_webhook; not a real case.",
            "category": {
                "code": "test.conformance",
                "family": "test",
                "taxonomy_version": "test",
                "source_code": None,
            },
            "severity": {"level": 4, "source_value": None},
            "location": {
                "point": {"lat": 32.3942, "lon": 119.4129},
                "area": None,
                "original": {"system": "WGS84", "lat": 32.3942, "lon": 119.4129},
                "address": "扬州市邗江区",
                "inside_city": True,
            },
            "division": {
                "district": "321003",
                "street": None,
                "community": None,
                "grid": None,
                "micro_grid": None,
                "tier": "district",
            },
            "network": "open311",
        },
        "instructions": None,
        "routing": {"rule_code": None, "rule_version": None, "previous_department": None},
    }


def _headers(ts: int, signature: str | None, delivery: str) -> dict[str, str]:
    h = {"content-type": "application/json", DELIVERY: delivery}
    if signature is not None:
        h[TIMESTAMP] = str(ts)
        h[SIGNATURE] = signature
    return h


async def check(
    url: str,
    secret: bytes,
    department: str,
    *,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> list[CaseResult]:
    own = client is None
    http = client or httpx.AsyncClient(timeout=10.0)
    results: list[CaseResult] = []

    async def send(name: str, expected: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            resp = await http.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            results.append(CaseResult(name, expected, None, False, f"{type(e).__name__}: {e}"))
            return
        s = resp.status_code
        ok = (
            200 <= s < 300
            if expected == "2xx"
            else (400 <= s < 500 if expected == "4xx" else s == int(expected))
        )
        results.append(CaseResult(name, expected, s, ok, "" if ok else resp.text[:200].replace("\n", " ")))

    try:
        now = int(clock())
        body = json.dumps(sample_order(department), ensure_ascii=False).encode()
        delivery = str(uuid.uuid4())
        valid_sig = sign(secret, now, delivery, body)
        await send("valid", "2xx", body, _headers(now, valid_sig, delivery))
        again = int(clock())
        await send("duplicate", "2xx", body, _headers(again, sign(secret, again, delivery, body), delivery))

        def fresh() -> bytes:
            return json.dumps(sample_order(department), ensure_ascii=False).encode()

        def signed(ts: int, b: bytes, key: bytes = secret) -> dict[str, str]:
            d = str(uuid.uuid4())
            return _headers(ts, sign(key, ts, d, b), d)

        b = fresh()
        await send("bad_signature", "401", b, signed(now, b, b"not-" + secret))
        await send("replayed", "401", body, _headers(now + 1, valid_sig, delivery))
        await send("replayed_new_id", "401", body, _headers(now, valid_sig, str(uuid.uuid4())))
        b = fresh()
        await send("stale_timestamp", "401", b, signed(int(clock()) - OFFSET_S, b))
        b = fresh()
        await send("future_timestamp", "401", b, signed(int(clock()) + OFFSET_S, b))
        await send("unsigned", "401", fresh(), _headers(now, None, str(uuid.uuid4())))
        junk = b'{"hello": "not an order"}'
        await send("not_an_order", "4xx", junk, signed(int(clock()), junk))
    finally:
        if own:
            await http.aclose()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m onegrid_departments.check_webhook", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "url", help="the endpoint dispatch posts to, e.g. https://dept.example/webhooks/chengguan"
    )
    ap.add_argument(
        "--secret",
        default=os.environ.get("ONEGRID_WEBHOOK_SECRET"),
        help="the shared secret (or ONEGRID_WEBHOOK_SECRET)",
    )
    ap.add_argument("--department", help="department code (default: the URL's last path segment)")
    args = ap.parse_args(argv)
    if not args.secret:
        ap.error("--secret or ONEGRID_WEBHOOK_SECRET is required")
    department = args.department or args.url.rstrip("/").rsplit("/", 1)[-1]
    results = asyncio.run(check(args.url, args.secret.encode(), department))
    for r in results:
        print(r.line())
    if all(r.status is None for r in results):
        print(f"{args.url} cannot be reached")
        return 2
    failed = [r.name for r in results if not r.passed]
    print(
        f"{len(results) - len(failed)}/{len(results)} cases as the contract says"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
