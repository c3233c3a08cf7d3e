"""What dispatch emits validates against its contracts; signatures verify and refuse replays."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from dispatch.desk import Desk
from dispatch.domain import signature
from dispatch.domain.case import Refused
from dispatch.domain.facts import decode_feedback
from dispatch.domain.lifecycle import Lifecycle
from dispatch.domain.messages import dispatch_order, lifecycle_event
from dispatch.domain.states import TERMINAL, Action, State

from .drive import NOW, case_in, command

SCHEMAS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"


def validator(name: str) -> Draft202012Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")]
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas])
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


LIFECYCLE = validator("lifecycle-event.v1.json")
ORDER = validator("dispatch-order.v1.json")


@pytest.mark.parametrize("state", list(State))
def test_every_transition_and_order_on_the_way_to_each_state_validates(
    lifecycle: Lifecycle, state: State
) -> None:
    case = case_in(lifecycle, state)
    decided = 0
    for action in Action:
        try:
            out = lifecycle.decide(case, command(action, case), NOW)
        except Refused:
            continue  # not allowed in this state: a refusal emits nothing; any other error fails
        decided += 1
        for t in out.transitions:
            event = lifecycle_event(out.case, t)
            assert not list(LIFECYCLE.iter_errors(event)), event
            assert "王建国" not in json.dumps(event, ensure_ascii=False)
        for o in out.orders:
            body = dispatch_order(out.case, o)
            assert not list(ORDER.iter_errors(body)), body
            assert "13805271234" not in json.dumps(body)
    # Refusing everything would make the checks above vacuous; only a cancelled case allows nothing.
    assert decided or state in TERMINAL, f"every action refused in {state}"


def test_closing_event_says_whether_it_was_on_time(lifecycle: Lifecycle) -> None:
    case = case_in(lifecycle, State.RESOLVED)
    out = lifecycle.decide(case, command(Action.VERIFY, case), NOW)
    assert lifecycle_event(out.case, out.transitions[-1])["on_time"] is True


def test_staff_names_are_masked(lifecycle: Lifecycle) -> None:
    case = case_in(lifecycle, State.REGISTERED)
    out = lifecycle.decide(case, command(Action.SELF_HANDLE, case), NOW)
    assert lifecycle_event(out.case, out.transitions[0])["actor"]["display"] == "张*"


def test_feedback_examples_decode_and_the_conditionals_hold() -> None:
    schema = json.loads((SCHEMAS / "feedback.v1.json").read_text(encoding="utf-8"))
    for example in schema["examples"]:
        decode_feedback(json.dumps(example).encode())
    bad = dict(schema["examples"][0], evidence=[])
    with pytest.raises(Exception, match="evidence"):
        decode_feedback(json.dumps(bad).encode())
    bad = dict(schema["examples"][2], return_reason=schema["examples"][1]["return_reason"])
    with pytest.raises(Exception, match="return_reason"):
        decode_feedback(json.dumps(bad).encode())


def test_signature_verifies_and_refuses_tampering_and_replay() -> None:
    secret, body, d = b"s3cret", b'{"order_id": "x"}', "d-1"
    sig = signature.sign(secret, 1_000_000, d, body)
    assert signature.verify([secret], "1000000", sig, d, body, now=1_000_010) is None
    assert signature.verify([secret], "1000000", sig, d, body + b" ", now=1_000_010) == "signature.mismatch"
    assert signature.verify([b"other"], "1000000", sig, d, body, now=1_000_010) == "signature.mismatch"
    assert (
        signature.verify([secret], "1000000", sig, d, body, now=1_000_301)
        == "signature.outside_replay_window"
    )
    assert signature.verify([secret], "abc", sig, d, body, now=1_000_000) == "signature.timestamp_invalid"


def test_the_delivery_id_is_signed_a_capture_replays_under_no_new_id() -> None:
    secret, body = b"s3cret", b'{"order_id": "x"}'
    sig = signature.sign(secret, 1_000_000, "d-1", body)
    assert signature.verify([secret], "1000000", sig, "d-2", body, now=1_000_010) == "signature.mismatch"
    assert signature.verify([secret], "1000000", sig, "", body, now=1_000_010) == "delivery.missing"


def test_while_rotating_either_secret_verifies() -> None:
    old, new, body = b"old-secret", b"new-secret", b"{}"
    for secret in (old, new):
        sig = signature.sign(secret, 1_000_000, "d-1", body)
        assert signature.verify([new, old], "1000000", sig, "d-1", body, now=1_000_000) is None
    sig = signature.sign(old, 1_000_000, "d-1", body)
    assert signature.verify([new], "1000000", sig, "d-1", body, now=1_000_000) == "signature.mismatch"


def test_the_photos_of_a_self_handling_and_a_check_are_in_their_lifecycle_events(
    lifecycle: Lifecycle,
) -> None:
    refs = ("photos/3b/" + "3b" * 32 + ".jpg", "photos/9f/" + "9f" * 32 + ".jpg")
    case = case_in(lifecycle, State.REGISTERED)
    handled = lifecycle.decide(
        case, dataclasses.replace(command(Action.SELF_HANDLE, case), evidence_refs=refs), NOW
    )
    event = lifecycle_event(handled.case, handled.transitions[0])
    assert event["evidence"] == list(refs)
    assert not list(LIFECYCLE.iter_errors(event)), event
    checked = lifecycle.decide(
        handled.case, dataclasses.replace(command(Action.VERIFY, handled.case), evidence_refs=refs[:1]), NOW
    )
    verify, close = (lifecycle_event(checked.case, t) for t in checked.transitions)
    assert verify["evidence"] == [refs[0]] and "evidence" not in close


def test_a_departments_evidence_is_in_the_lifecycle_event_of_its_resolve(lifecycle: Lifecycle) -> None:
    """Before: the event of a department's resolve said nothing of its evidence (dispatch kept only a
    count), so the case page and the audit trail could not show the department's photos."""
    case = case_in(lifecycle, State.DISPATCHED)
    order = case.orders[0]
    example = json.loads((SCHEMAS / "feedback.v1.json").read_text(encoding="utf-8"))["examples"][0]
    sha = "5c" * 32
    body = dict(
        example,
        case_id=case.case_id,
        order_id=order.order_id,
        department=order.department,
        kind="resolve",
        return_reason=None,
        actor={"kind": "department", "id": order.department, "display": ""},
        evidence=[
            {
                "ref": f"evidence/2026/03/01/{sha}.jpg",
                "media_type": "image/jpeg",
                "sha256": sha,
                "taken_at": None,
            }
        ],
    )
    change = Desk.of_feedback(decode_feedback(json.dumps(body).encode()))
    assert change.command is not None
    resolved = lifecycle.decide(case, change.command, NOW)
    event = lifecycle_event(resolved.case, resolved.transitions[0])
    assert event["action"] == "resolve" and event["evidence"] == [f"evidence/2026/03/01/{sha}.jpg"]
    assert not list(LIFECYCLE.iter_errors(event)), event
