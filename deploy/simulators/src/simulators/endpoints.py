"""Where the running system is: Kafka and the services' base URLs.

Precedence, per value: a command-line flag, then the environment (ONEGRID_KAFKA_BOOTSTRAP_SERVERS,
ONEGRID_<SERVICE>_URL), then `.run/endpoints.json` written by `make up`, then the default ports.
Kafka security settings (SASL, TLS) come from the environment as for every service (KafkaSettings).
The services' APIs take a bearer token: ONEGRID_API_TOKEN, else the `admin_token` that `make up`
writes into `.run/endpoints.json` (python -m onegrid.auth mint makes one of another role).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onegrid.settings import KafkaSettings

DEFAULT_URLS = {
    "grid-registry": "http://127.0.0.1:8001",
    "intake": "http://127.0.0.1:8002",
    "dispatch": "http://127.0.0.1:8003",
    "audit": "http://127.0.0.1:8004",
    "open311": "http://127.0.0.1:8006",
    "bridges": "http://127.0.0.1:8007",
}
DEFAULT_HJ212 = "127.0.0.1:8212"


@dataclass(frozen=True)
class Endpoints:
    kafka: KafkaSettings
    urls: dict[str, str]
    token: str | None = None
    hj212_address: str = DEFAULT_HJ212  # host:port of the HJ 212 bridge's TCP listener

    def url(self, service: str) -> str:
        return self.urls[service].rstrip("/")

    def headers(self) -> dict[str, str]:
        """What every API call carries: the bearer token, when one is known."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def endpoints_file() -> Path | None:
    """`.run/endpoints.json` of the checkout (ONEGRID_RUN or ONEGRID_ROOT may point elsewhere)."""
    run = os.environ.get("ONEGRID_RUN")
    if run:
        return Path(run) / "endpoints.json"
    from onegrid.paths import project_root

    try:
        return project_root() / ".run" / "endpoints.json"
    except RuntimeError:
        return None


def load(bootstrap: str | None = None, **urls: str | None) -> Endpoints:
    """`urls` by service name with `_` for `-` (grid_registry=..., intake=..., dispatch=...)."""
    path = endpoints_file()
    stored: dict[str, Any] = {}
    if path is not None and path.exists():
        stored = json.loads(path.read_text())
    services = dict(DEFAULT_URLS)
    services.update(stored.get("services") or {})
    for name in DEFAULT_URLS:
        env = os.environ.get(f"ONEGRID_{name.replace('-', '_').upper()}_URL")
        if env:
            services[name] = env
        flag = urls.get(name.replace("-", "_"))
        if flag:
            services[name] = flag
    kafka = KafkaSettings()
    server = bootstrap or os.environ.get("ONEGRID_KAFKA_BOOTSTRAP_SERVERS") or stored.get("kafka_bootstrap")
    if server:
        kafka = kafka.model_copy(update={"bootstrap_servers": str(server)})
    token = os.environ.get("ONEGRID_API_TOKEN") or stored.get("admin_token")
    hj212 = os.environ.get("ONEGRID_BRIDGES_HJ212_ADDRESS") or stored.get("bridges_hj212") or DEFAULT_HJ212
    return Endpoints(
        kafka=kafka, urls=services, token=str(token) if token else None, hj212_address=str(hj212)
    )
