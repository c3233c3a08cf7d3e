"""A case event or report that ends up in a log line carries no reporter name, phone or id number."""

from __future__ import annotations

from intake.domain.report import ReporterInfo
from onegrid_contracts.case_event import Reporter


def test_reporter_reprs_hide_personal_fields() -> None:
    for reporter in (
        Reporter(
            name="王建国", phone="13805271234", id_number="321002198001011234", org="新盛街道第一党支部"
        ),
        ReporterInfo(
            name="王建国", phone="13805271234", id_number="321002198001011234", org="新盛街道第一党支部"
        ),
    ):
        text = repr(reporter)
        assert "王建国" not in text and "13805271234" not in text and "321002198001011234" not in text
        assert "新盛街道第一党支部" in text and "***" in text
    assert "name=None" in repr(Reporter(name=None, phone=None, id_number=None, org=None))
