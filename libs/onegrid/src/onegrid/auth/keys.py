"""API keys for department systems and Open311 clients, kept as SHA-256 hashes in a JSON file.

The file (`ONEGRID_AUTH_API_KEYS_FILE`) is a list of objects:
`{"id": "hotline-12345", "sha256": "<hex>", "role": "open311_client", "subject": "...",
"divisions": [], "departments": [], "revoked": false}`. Keys are 32 random bytes (`og_` + base64url),
so a plain SHA-256 is enough (no password stretching needed); the key itself is shown once, when
made, and never stored. Revoking = `"revoked": true` (kept for the record) or deleting the entry; the
store re-reads the file when its modification time changes, so revocation needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onegrid.auth.policy import Principal, Role

PREFIX = "og_"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    id: str
    sha256: str
    principal: Principal
    revoked: bool = False


def _record(doc: Any, where: str) -> KeyRecord:
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("id"), str)
        or not isinstance(doc.get("sha256"), str)
    ):
        raise ValueError(f"{where}: each API key needs a string id and sha256")
    principal = Principal(
        subject=str(doc.get("subject") or f"api_key:{doc['id']}"),
        role=Role(doc.get("role", "")),
        divisions=tuple(doc.get("divisions") or ()),
        departments=tuple(doc.get("departments") or ()),
        via="api_key",
    )
    return KeyRecord(doc["id"], doc["sha256"].lower(), principal, bool(doc.get("revoked", False)))


class ApiKeyStore:
    """Looks keys up by hash; reloads the file at most once a second when it has changed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._records: dict[str, KeyRecord] = {}
        self._mtime: float | None = None
        self._checked = 0.0

    def _refresh(self) -> None:
        if self.path is None or time.monotonic() - self._checked < 1.0:
            return
        self._checked = time.monotonic()
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._records, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        self._records = {r.sha256: r for r in load(self.path)}
        self._mtime = mtime

    def principal(self, key: str) -> Principal | None:
        """The key's principal; None when unknown or revoked (compared in constant time)."""
        self._refresh()
        digest = key_hash(key)
        for sha, record in self._records.items():
            if hmac.compare_digest(sha, digest):
                return None if record.revoked else record.principal
        return None


def load(path: Path) -> list[KeyRecord]:
    docs = json.loads(path.read_text() or "[]")
    if not isinstance(docs, list):
        raise ValueError(f"{path}: the API key file is a JSON list")
    return [_record(d, str(path)) for d in docs]


def add(path: Path, *, key_id: str, role: Role, divisions: list[str], departments: list[str]) -> str:
    """Append a new key's hash to the file and return the key (shown once)."""
    docs = json.loads(path.read_text() or "[]") if path.exists() else []
    if any(d.get("id") == key_id for d in docs):
        raise ValueError(f"an API key with id {key_id!r} exists; revoke it or choose another id")
    key = new_key()
    doc = {
        "id": key_id,
        "sha256": key_hash(key),
        "role": role.value,
        "divisions": divisions,
        "departments": departments,
        "revoked": False,
    }
    _record(doc, str(path))  # validates role and scope before anything is written
    docs.append(doc)
    _write(path, docs)
    return key


def revoke(path: Path, key_id: str) -> bool:
    docs = json.loads(path.read_text() or "[]") if path.exists() else []
    found = False
    for d in docs:
        if d.get("id") == key_id:
            d["revoked"], found = True, True
    _write(path, docs)
    return found


def _write(path: Path, docs: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(docs, indent=2, ensure_ascii=False) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
