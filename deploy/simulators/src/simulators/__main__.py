"""python -m simulators {networks | departments | demo}: the simulated city around a running OneGrid.

    python -m simulators networks --rate 5 [--duration S] [--seed N]
    python -m simulators departments [--silent chengguan] [--return-rate 0.1] [--webhook-port 8010]
    python -m simulators demo

Where the system is: `.run/endpoints.json` (`make up`), overridable by flags and the environment
(see endpoints.py). Every command stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from simulators.domain.answers import Behaviour
from simulators.endpoints import load


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: .run/endpoints.json)")
    p.add_argument("--intake-url", help="intake's base URL (default: .run/endpoints.json)")
    p.add_argument("--dispatch-url", help="dispatch's base URL (default: .run/endpoints.json)")
    p.add_argument("--registry-url", help="grid-registry's base URL (default: .run/endpoints.json)")
    p.add_argument("--bridges-url", help="the bridges' base URL (default: .run/endpoints.json)")
    p.add_argument("--open311-url", help="the Open311 service's base URL (default: .run/endpoints.json)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m simulators", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    n = sub.add_parser("networks", help="the legacy networks: HJ 212, CAP, safety, party, Open311")
    n.add_argument("--rate", type=float, default=5.0, help="legacy records per second, all feeds (default 5)")
    n.add_argument("--alert-hub-port", type=int, default=8011, help="port of the simulated CAP alert hub")
    _common(n)
    d = sub.add_parser("departments", help="departments (Kafka and webhooks) and the grid worker")
    d.add_argument("--silent", default="chengguan", help="comma-separated departments that never answer")
    d.add_argument("--return-rate", type=float, default=0.1, help="share of assign orders returned (退单)")
    d.add_argument("--rework-rate", type=float, default=0.1, help="share of verifications that fail (返工)")
    d.add_argument("--webhook-port", type=int, default=8010)
    d.add_argument("--pace", type=float, default=1.0, help="multiplies every answering delay")
    d.add_argument("--no-grid-worker", action="store_true", help="departments only")
    _common(d)
    m = sub.add_parser("demo", help="a scripted day against the running system; exit 0 when all happened")
    m.add_argument("--timeout", type=float, default=240.0, help="give up after this many seconds")
    _common(m)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    endpoints = load(
        args.bootstrap,
        intake=args.intake_url,
        dispatch=args.dispatch_url,
        grid_registry=args.registry_url,
        bridges=args.bridges_url,
        open311=args.open311_url,
    )
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    if args.command == "networks":
        from simulators.gateway import run_networks

        asyncio.run(
            run_networks(
                endpoints,
                rate=args.rate,
                duration_s=args.duration,
                seed=seed,
                alert_hub_port=args.alert_hub_port,
            )
        )
        return 0
    if args.command == "departments":
        from simulators.departments import run_departments, webhook_secrets
        from simulators.grid_worker import GridWorker
        from simulators.running import Tally

        pace = args.pace
        behaviour = Behaviour(
            silent=frozenset(s.strip() for s in args.silent.split(",") if s.strip()),
            return_rate=args.return_rate,
            acknowledge_after_s=(2.0 * pace, 15.0 * pace),
            progress_after_s=(5.0 * pace, 30.0 * pace),
            resolve_after_s=(10.0 * pace, 60.0 * pace),
        )

        async def departments() -> None:
            tally, worker = Tally("departments"), None
            if not args.no_grid_worker:
                worker = GridWorker(
                    endpoints.url("dispatch"), tally, rework_rate=args.rework_rate,
                    delay_s=(5.0 * pace, 30.0 * pace), seed=seed, headers=endpoints.headers(),
                )  # fmt: skip
            patrols = None
            if not args.no_grid_worker and "console" in endpoints.urls:
                from simulators.patrol import Patrols

                patrols = Patrols(endpoints.url("console"), tally, headers=endpoints.headers(),
                                  every_s=60.0 * pace, seed=seed or 0)  # fmt: skip
            await run_departments(
                endpoints,
                patrols=patrols,
                behaviour=behaviour,
                webhooks=webhook_secrets(os.environ.get("ONEGRID_DISPATCH_WEBHOOKS")),
                webhook_port=args.webhook_port,
                grid_worker=worker,
                duration_s=args.duration,
                seed=seed,
                tally=tally,
            )

        asyncio.run(departments())
        return 0
    from simulators.demo import run_demo

    return asyncio.run(run_demo(endpoints, timeout_s=args.timeout, seed=seed))


if __name__ == "__main__":
    sys.exit(main())
