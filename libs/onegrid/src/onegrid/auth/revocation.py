"""Revoked tokens: a JSON file (`ONEGRID_AUTH_REVOKED_FILE`) of token ids and subjects no longer
accepted, `{"jti": ["..."], "subjects": ["staff:hj-0042"]}`. Revoking a subject refuses every token
of it (a leaked admin token, a person who left) until its tokens would have expired anyway and the
entry is removed. The file is re-read when its modification time changes, so a revocation takes
effect without a restart; a missing file revokes nothing, an unreadable one refuses every token
(fail closed) until it is fixed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Revocations:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._jti: frozenset[str] = frozenset()
        self._subjects: frozenset[str] = frozenset()
        self._broken: str | None = None

    def refused(self, claims: dict[str, Any]) -> str | None:
        """Why a token with these claims is revoked, or None."""
        self._reload()
        if self._broken is not None:
            return f"the revocation list is unreadable ({self._broken})"
        if str(claims.get("jti") or "") in self._jti:
            return "the token is revoked"
        if str(claims.get("sub") or "") in self._subjects:
            return "the token's subject is revoked"
        return None

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._jti, self._subjects, self._broken, self._mtime = frozenset(), frozenset(), None, None
            return
        if mtime == self._mtime:
            return
        try:
            doc = json.loads(self.path.read_text())
            self._jti = frozenset(str(x) for x in doc.get("jti", []))
            self._subjects = frozenset(str(x) for x in doc.get("subjects", []))
            self._broken = None
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            self._broken = type(exc).__name__
        self._mtime = mtime
