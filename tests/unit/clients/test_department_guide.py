"""The department guide's worked webhook signature is what dispatch really sends, and what the kit
verifies: a reader who recomputes it by the guide's recipe gets the printed value."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import onegrid_departments as kit
from dispatch.domain import signature as dispatch_signature

GUIDE = Path(__file__).resolve().parents[3] / "contracts/departments/README.md"


def worked_example() -> dict[str, str]:
    text = GUIDE.read_text(encoding="utf-8")
    block = re.search(r"<!-- worked-example.*?-->\n```text\n(.*?)```", text, re.S)
    assert block, "the guide has no worked-example block"
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", block.group(1), re.M))
    stated_len = re.search(r"no trailing newline, (\d+) bytes in UTF-8", text)
    assert stated_len
    fields["length"] = stated_len.group(1)
    shell = re.search(r"^BODY='(.*)'$", text, re.M)
    assert shell
    fields["shell_body"] = shell.group(1)
    return fields


def test_worked_signature_recomputes_by_the_guides_recipe() -> None:
    ex = worked_example()
    body = ex["body"].encode("utf-8")
    # The recipe as the guide states it, with nothing but the standard library.
    signing_input = ex["timestamp"].encode() + b"." + ex["delivery"].encode() + b"." + body
    mac = hmac.new(ex["secret"].encode(), signing_input, hashlib.sha256).hexdigest()
    assert ex["signature"] == "v2=" + mac
    assert len(body) == int(ex["length"])
    assert ex["shell_body"] == ex["body"]


def test_worked_signature_is_dispatchs_and_the_kit_verifies_it() -> None:
    ex = worked_example()
    secret, ts, body, d = ex["secret"].encode(), int(ex["timestamp"]), ex["body"].encode(), ex["delivery"]
    assert dispatch_signature.sign(secret, ts, d, body) == ex["signature"]
    assert kit.sign(secret, ts, d, body) == ex["signature"]
    headers = {kit.TIMESTAMP: ex["timestamp"], kit.SIGNATURE: ex["signature"], kit.DELIVERY: d}
    assert kit.verify_delivery(secret, headers, body, now=ts + 10).delivery_id == d


def test_kit_and_dispatch_agree_on_refusals() -> None:
    secret, body, ts = b"s" * 32, '{"标题":"x"}'.encode(), 1_772_331_600
    good = dispatch_signature.sign(secret, ts, "d-1", body)
    cases = [
        (str(ts), good, "d-1", ts + 10),
        (str(ts), good, "d-1", ts + 301),
        (str(ts), good, "d-1", ts - 301),
        (str(ts + 1), good, "d-1", ts),
        ("x", good, "d-1", ts),
        (str(ts), good, "d-2", ts),
        (str(ts), good, "", ts),
        (str(ts), dispatch_signature.sign(b"other", ts, "d-1", body), "d-1", ts),
    ]
    for stamp, sig, d, now in cases:
        assert kit.verify(secret, stamp, sig, d, body, now=now) == dispatch_signature.verify(
            [secret], stamp, sig, d, body, now=now
        )
