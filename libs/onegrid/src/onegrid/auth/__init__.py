"""Access control for every service: tokens and API keys in, a `Principal` with a role and a scope
out; endpoints declare `require(action, resource)`; queries filter with `principal.scope()`.

    python -m onegrid.auth mint --role street_operator --scope 321003009 --subject staff:hj-0042
    python -m onegrid.auth api-key add --id hotline --role open311_client --file .run/api-keys.json
"""

from onegrid.auth.guard import (
    Authenticator,
    assert_guarded,
    caller,
    install,
    log_personal_data_read,
    mint,
    public,
    require,
)
from onegrid.auth.jws import InvalidToken
from onegrid.auth.policy import NotPermitted, Principal, Role, ScopeFilter, personal_data_refusal
from onegrid.auth.settings import AuthSettings

__all__ = [
    "AuthSettings",
    "Authenticator",
    "InvalidToken",
    "NotPermitted",
    "Principal",
    "Role",
    "ScopeFilter",
    "assert_guarded",
    "caller",
    "install",
    "log_personal_data_read",
    "mint",
    "personal_data_refusal",
    "public",
    "require",
]
