"""Development tokens and API keys.

    python -m onegrid.auth mint --role city_operator --scope 321000 [--subject staff:cc-01] [--ttl-hours 8]
    python -m onegrid.auth mint --role department_operator --department chengguan
    python -m onegrid.auth api-key add --id hotline-12345 --role open311_client [--file PATH]
    python -m onegrid.auth api-key revoke --id hotline-12345 [--file PATH]

`mint` signs with ONEGRID_AUTH_HS256_SECRET, else (development) `.run/auth-secret`, the secret `make up`
gives every service; the token is printed alone on stdout. API keys go to ONEGRID_AUTH_API_KEYS_FILE
(or --file; default `.run/api-keys.json`); the key is printed once and only its hash is stored.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from onegrid.auth import keys
from onegrid.auth.guard import mint
from onegrid.auth.policy import Role
from onegrid.auth.settings import AuthSettings


def _keys_file(given: str | None, settings: AuthSettings) -> Path:
    if given:
        return Path(given)
    if settings.api_keys_file:
        return settings.api_keys_file
    from onegrid.paths import run_dir

    return run_dir() / "api-keys.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m onegrid.auth", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mint", help="print a development token (HS256)")
    m.add_argument("--role", required=True, choices=[r.value for r in Role])
    m.add_argument("--scope", action="append", default=[], help="division or grid code (repeatable)")
    m.add_argument("--department", action="append", default=[], help="department code (repeatable)")
    m.add_argument("--subject", default=None, help="who the token is for (default: <role>:dev)")
    m.add_argument("--ttl-hours", type=float, default=8.0)
    k = sub.add_parser("api-key", help="add or revoke an API key")
    k.add_argument("action", choices=["add", "revoke"])
    k.add_argument("--id", required=True)
    k.add_argument("--role", choices=[r.value for r in Role], default=Role.OPEN311_CLIENT.value)
    k.add_argument("--scope", action="append", default=[])
    k.add_argument("--department", action="append", default=[])
    k.add_argument("--file", default=None)
    args = p.parse_args(argv)
    settings = AuthSettings()
    try:
        if args.command == "mint":
            secret = settings.secret(environment=os.environ.get("ONEGRID_ENVIRONMENT", "development"))
            if secret is None:
                print(
                    "ONEGRID_AUTH_HS256_SECRET is not set: tokens outside development come from the identity provider",
                    file=sys.stderr,
                )
                return 2
            print(
                mint(
                    secret,
                    role=args.role,
                    subject=args.subject or f"{args.role}:dev",
                    divisions=args.scope,
                    departments=args.department,
                    issuer=settings.issuer,
                    audience=settings.audience,
                    ttl_s=args.ttl_hours * 3600,
                )
            )
            return 0
        path = _keys_file(args.file, settings)
        if args.action == "add":
            key = keys.add(
                path, key_id=args.id, role=Role(args.role), divisions=args.scope, departments=args.department
            )
            print(key)
            print(f"stored its hash in {path}; the key is not shown again", file=sys.stderr)
            return 0
        if not keys.revoke(path, args.id):
            print(f"no API key {args.id!r} in {path}", file=sys.stderr)
            return 1
        print(f"revoked {args.id} in {path}", file=sys.stderr)
        return 0
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
