"""Every service built or started by a test verifies tokens with the test secret, and test modules
import their helpers as `support.*` (tests/support)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support.auth import TEST_SECRET

os.environ["ONEGRID_AUTH_HS256_SECRET"] = TEST_SECRET
# Services default to production (asymmetric tokens only); tests run as the test environment.
os.environ["ONEGRID_ENVIRONMENT"] = "test"
