"""A setup step that cannot go on, told to a person in one sentence with what to do."""

from __future__ import annotations


class SetupError(RuntimeError):
    """Printed as it is (no traceback) by `python -m devstack`, which then exits with 2."""
