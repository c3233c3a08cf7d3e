"""OneGrid integration kit for departmental systems (see contracts/departments/README.md).

- `verify_delivery` / `WebhookVerifier`: check a signed webhook delivery (any framework / Starlette).
- `decode_order`: an order message (Kafka value or webhook body) as a typed `Order`.
- `FeedbackClient`: acknowledge, progress, resolve, return over the feedback API, with retries and
  one idempotency key (feedback_id) per answer.
- `consume_orders` (extra `kafka`): read `dispatch.orders.<dept>.v1` read_committed, commit after handling.
- `python -m onegrid_departments.check_webhook URL --secret S`: conformance check of a webhook endpoint.
"""

from onegrid_departments.feedback import Feedback, FeedbackClient, FeedbackRefused, FeedbackUnavailable
from onegrid_departments.orders import Order, OrderInvalid, decode_order
from onegrid_departments.signature import (
    DELIVERY,
    SIGNATURE,
    TIMESTAMP,
    WINDOW_S,
    Delivery,
    RotatingSecret,
    WebhookRefused,
    sign,
    signing_input,
    verify,
    verify_delivery,
)

__all__ = [
    "DELIVERY",
    "SIGNATURE",
    "TIMESTAMP",
    "WINDOW_S",
    "Delivery",
    "Feedback",
    "FeedbackClient",
    "FeedbackRefused",
    "FeedbackUnavailable",
    "Order",
    "OrderInvalid",
    "RotatingSecret",
    "WebhookRefused",
    "decode_order",
    "sign",
    "signing_input",
    "verify",
    "verify_delivery",
]
