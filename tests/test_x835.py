"""The X12 835 (005010X221A1) reader on the LinuxForHealth samples (tests/data/x835/, see
NOTICE there) and on damaged copies of them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cleanclaim.engine.formats.x835 import read_x835, read_x835_file
from cleanclaim.engine.formats.x835_records import ClaimPayment, RemittanceFile
from cleanclaim.engine.inputs import InputFileError

DATA = Path(__file__).parent / "data" / "x835"


def _text(name: str) -> str:
    return (DATA / name).read_text()


def _segments(name: str) -> list[str]:
    return [s.strip() for s in _text(name).split("~") if s.strip()]


def _join(segments: list[str]) -> str:
    return "~\n".join(segments) + "~\n"


def _claims(found: RemittanceFile) -> dict[str | None, ClaimPayment]:
    return {c.claim_id: c for c in found.claims()}


def _problems(claim: ClaimPayment) -> list[tuple[str, str]]:
    return [(p.where, p.message) for p in claim.all_problems()]


# --------------------------------------------------------------------------- the samples


def test_managed_care_sample_claims_services_and_adjustments() -> None:
    found = read_x835_file(DATA / "managed-care.835")
    assert found.problems == []
    [remittance] = found.remittances
    assert (remittance.transaction, remittance.payment, remittance.method) == (
        "112233",
        Decimal("945.00"),
        "ACH",
    )
    assert remittance.trace == "7170066655"
    assert remittance.payer is not None and remittance.payer.name == "RUSHMORE LIFE"
    assert remittance.payee is not None and remittance.payee.id == "5544667733"
    # BPR16 of this sample is 20002316 (month 23): a located problem of the transaction.
    assert [(p.where, p.message) for p in remittance.problems] == [
        ("BPR segment 4, element BPR16", "date is not a valid date (CCYYMMDD)")
    ]
    claims = _claims(found)
    assert list(claims) == ["5554555444", "8765432112"]
    first = claims["5554555444"]
    assert (first.status, first.charge, first.paid, first.patient_responsibility) == (
        "1",
        Decimal("800.00"),
        Decimal("450.00"),
        Decimal("300.00"),
    )
    assert first.payer_claim_number == "94060555410000"
    assert [(a.group, a.carc, a.amount) for a in first.adjustments] == [
        ("CO", "A2", Decimal("50.00"))
    ]
    [service] = first.services
    assert (service.qualifier, service.code, service.charge, service.paid, service.units) == (
        "HC",
        "99211",
        Decimal("800.00"),
        Decimal("500.00"),
        Decimal(1),
    )
    assert (service.service_date, service.service_end_date) == ("2002-03-01", "2002-03-04")
    assert [(a.group, a.carc, a.amount, a.where) for a in service.adjustments] == [
        ("PR", "1", Decimal("300.00"), "CAS segment 19, element CAS02")
    ]
    second = claims["8765432112"]
    assert [(a.group, a.carc) for a in second.services[0].adjustments] == [
        ("PR", "1"),
        ("CO", "45"),
    ]
    assert not first.damaged and not second.damaged


def test_medicare_sample_moa_remarks_plb_and_payer_ref() -> None:
    found = read_x835_file(DATA / "medicare-part-a.835")
    [remittance] = found.remittances
    assert remittance.problems == []
    assert remittance.payer is not None and (
        remittance.payer.id_qualifier,
        remittance.payer.id,
    ) == ("2U", "999")
    [plb] = remittance.provider_adjustments
    assert (plb.reason, plb.reference, plb.amount, plb.fiscal_period_end) == (
        "CV",
        "CP",
        Decimal("-1.27"),
        "2002-12-31",
    )
    claims = _claims(found)
    assert claims["777777"].remarks == ["MA02"]
    assert claims["666123"].statement_start == "2002-08-16"
    assert claims["666123"].statement_end == "2002-08-24"
    assert claims["666123"].services == []
    assert not any(c.damaged for c in claims.values())


def test_secondary_sample_uses_gt_as_component_separator_and_keeps_modifiers() -> None:
    found = read_x835_file(DATA / "secondary-payment.835")
    claims = _claims(found)
    line1, line2 = claims["0001000053"].services
    assert (line1.code, line1.modifiers, line1.units) == ("12345", ["26"], Decimal("1.00"))
    assert line1.service_date == "2005-01-06"
    # CAS*PR*1*150.00**2*70.00: two triples in one CAS, the quantity of the first empty.
    assert [(a.group, a.carc, a.amount, a.quantity, a.where) for a in line2.adjustments] == [
        ("PR", "1", Decimal("150.00"), None, "CAS segment 36, element CAS02"),
        ("PR", "2", Decimal("70.00"), None, "CAS segment 36, element CAS05"),
        ("CO", "42", Decimal("85.00"), None, "CAS segment 37, element CAS02"),
    ]
    assert line2.allowed == Decimal("500.00")
    assert [s.line_number() for s in (line1, line2)] == [1, 2]
    assert not any(c.damaged for c in claims.values())
    assert found.remittances[0].problems == []


# --------------------------------------------------------------------------- damaged copies


def test_a_bad_cas_triple_is_located_and_the_other_claims_are_read() -> None:
    segments = _segments("managed-care.835")
    at = segments.index("CAS*PR*1*600.00")
    segments[at] = "CAS*PR*1*6O0.00*1*2*"  # letter O in the amount; a reason with no amount
    found = read_x835(_join(segments), "bad-cas.835")
    claims = _claims(found)
    assert not claims["5554555444"].damaged
    bad = claims["8765432112"]
    assert bad.damaged
    no = at + 1
    assert _problems(bad) == [
        (f"CAS segment {no}, element CAS03", 'amount of CARC 1 "6O0.00" is not a number'),
        (f"CAS segment {no}, element CAS06", "amount of CARC 2 is missing"),
    ]
    # The valid triple of a later CAS on the same line is still read.
    assert [(a.group, a.carc) for a in bad.services[0].adjustments] == [("CO", "45")]


def test_a_cas_with_an_unknown_group_or_more_than_six_triples() -> None:
    segments = _segments("managed-care.835")
    at = segments.index("CAS*CO*A2*50.00")
    segments[at] = "CAS*XX*A2*50.00"
    at2 = segments.index("CAS*CO*45*50.00")
    segments[at2] = "CAS*CO*45*50.00" + "*" + "*".join(["45", "1.00", ""] * 6)
    found = read_x835(_join(segments), "groups.835")
    claims = _claims(found)
    assert _problems(claims["5554555444"])[0] == (
        f"CAS segment {at + 1}, element CAS01",
        'group code "XX" is not one of CO, CR, OA, PI, PR',
    )
    assert (
        f"CAS segment {at2 + 1}, element CAS20",
        "a CAS holds at most six adjustments (19 elements)",
    ) in _problems(claims["8765432112"])


def test_missing_se_rejects_that_transaction_only() -> None:
    good = _segments("medicare-part-a.835")
    bad = _segments("managed-care.835")
    # One interchange, one group, two transaction sets: the first loses its SE.
    st1 = bad[2 : bad.index("SE*26*112233")]
    st2 = good[2 : good.index("SE*28*1234") + 1]
    text = _join([*good[:2], *st1, *st2, "GE*2*1", good[-1]])
    found = read_x835(text, "no-se.835")
    claims = _claims(found)
    for claim_id in ("5554555444", "8765432112"):
        messages = [m for _, m in _problems(claims[claim_id])]
        assert any("has no SE before ST segment" in m for m in messages), messages
    assert not claims["666123"].damaged and not claims["777777"].damaged


def test_wrong_counts_and_control_numbers_are_reported_on_the_trailer_element() -> None:
    segments = _segments("managed-care.835")
    segments[segments.index("SE*26*112233")] = "SE*25*112299"
    found = read_x835(_join(segments), "counts.835")
    se_no = len(segments) - 2
    for claim in found.claims():
        problems = _problems(claim)
        assert (
            f"SE segment {se_no}, element SE01",
            "SE01 says 25 segments, the transaction set 112233 has 26: the transaction"
            " set 112233 is rejected whole (999 IK5)",
        ) in problems
        assert any(w == f"SE segment {se_no}, element SE02" for w, _ in problems)


def test_a_truncated_file_keeps_the_complete_claims_and_flags_the_cut_one() -> None:
    text = _text("secondary-payment.835")
    cut = text.index("CAS*PR*1*150.00") + 9
    found = read_x835(text[:cut], "cut.835")
    claims = _claims(found)
    assert list(claims) == ["L0004828311", "0001000053"]
    last = claims["0001000053"]
    messages = [m for _, m in _problems(last)]
    assert any(
        m.startswith(
            "the file is truncated: it ends in the middle of segment 36 (CAS)"
            " with no SE, GE, IEA, inside the claim begun at CLP segment 24"
        )
        for m in messages
    ), messages
    # The first claim was read whole; its transaction set has no SE, so it is damaged too
    # (an X12 receiver rejects the set), but its data is there.
    first = claims["L0004828311"]
    assert first.paid == Decimal("912.00") and first.damaged


def test_an_unbalanced_claim_is_a_problem_and_an_unbalanced_payment_is_the_transactions() -> None:
    segments = _segments("managed-care.835")
    segments[segments.index("CAS*CO*A2*55.00")] = "CAS*CO*A2*56.00"
    found = read_x835(_join(segments), "unbalanced.835")
    bad = _claims(found)["8765432112"]
    clp_no = segments.index("CLP*8765432112*1*1200.00*495.00*600.00*12*94077799230000") + 1
    assert _problems(bad) == [
        (
            f"CLP segment {clp_no}, element CLP04",
            "the claim does not balance: charge 1200.00 - paid 495.00 - adjustments 706.00 = -1.00",
        )
    ]
    segments = _segments("managed-care.835")
    segments[segments.index(next(s for s in segments if s.startswith("BPR")))] = (
        "BPR*I*946.00*C*ACH*CCP*01*888999777*DA*24681012*1935665544**01*111333555*DA*144444"
        "*20020316"
    )
    found = read_x835(_join(segments), "payment.835")
    assert [(p.where, p.message) for p in found.remittances[0].problems] == [
        (
            "BPR segment 4, element BPR02",
            "the payment 946.00 is not the claim payments 945.00 less the provider adjustments 0",
        )
    ]
    assert not any(c.damaged for c in found.claims())


def test_bad_svc_clp_and_dates_are_located() -> None:
    segments = _segments("secondary-payment.835")
    segments[segments.index("SVC*HC>12345>26*166.50*30.00**1.00")] = "SVC*HC*166.50*3O.00**1.00"
    segments[segments.index("CLP*L0004828311*2*10323.64*912.00**12*05090256390*11*1")] = (
        "CLP**9*10323.64*912.00**12*05090256390*11*1"
    )
    segments[segments.index("DTM*232*20050106")] = "DTM*232*20051306"
    found = read_x835(_join(segments), "bad.835")
    first, second = found.claims()
    assert [m for _, m in _problems(first)] == [
        "patient control number (our claim id) is missing",
        'claim status "9" is not a CLP02 code',
    ]
    assert first.claim_id is None and first.paid == Decimal("912.00")
    wheres = [w for w, _ in _problems(second)]
    assert wheres[0].endswith("element DTM02")
    assert any(w.endswith("element SVC01-2") for w in wheres)
    assert any(w.endswith("element SVC03") for w in wheres)


def test_a_clp_outside_an_835_is_reported_and_not_read() -> None:
    segments = _segments("managed-care.835")
    segments[2] = "ST*837*112233*005010X222A1"
    with pytest.raises(InputFileError) as caught:
        read_x835(_join(segments), "not835.835")
    assert "not an 835 005010X221" in str(caught.value)
    assert "CLP segment 13: claim payment not read" in str(caught.value)


def test_not_x12_is_a_file_error() -> None:
    with pytest.raises(InputFileError, match="not an X12 file"):
        read_x835('{"claim_id": "C-1"}', "claims.json")


def test_line_number_follows_ref_6r_else_the_position() -> None:
    segments = _segments("secondary-payment.835")
    at = segments.index("SVC*HC>66543>26*585.00*280.00*220*1.00")
    segments.insert(at + 2, "REF*6R*7")
    found = read_x835(_join(segments).replace("SE*38*", "SE*39*"), "ref6r.835")
    claim = _claims(found)["0001000053"]
    assert [s.line_number() for s in claim.services] == [1, 7]
    assert not claim.damaged


def test_messages_never_hold_patient_names_or_ids() -> None:
    segments = _segments("managed-care.835")
    segments = [s.replace("*300.00", "*3X0.00") for s in segments]
    found = read_x835(_join(segments), "phi.835")
    text = repr([p for c in found.claims() for p in c.all_problems()])
    assert "BUDD" not in text and "33344555510" not in text
    assert _claims(found)["5554555444"].patient_id == "33344555510"
