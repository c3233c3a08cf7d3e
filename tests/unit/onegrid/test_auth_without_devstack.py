"""The runtime's auth code finds its development secret and API keys without the local stack:
`devstack` (deploy/local) starts brokers and databases and is no part of a running service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from onegrid.auth.__main__ import _keys_file
from onegrid.auth.settings import AuthSettings, development_secret

assert development_secret()
assert _keys_file(None, AuthSettings()).name == "api-keys.json"
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "devstack")
assert not loaded, loaded
"""


def test_development_secret_and_keys_file_do_not_load_the_local_stack(tmp_path: Path) -> None:
    env = {"ONEGRID_RUN": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
