"""The cardiology plugin: ECG and echo documentation, stress-test bundling, modifier 25.

Its rules are written in the policy language (packs/cardiology/cardiology.policy); this
module declares the `ecg` and `echo` documentation sections and the language functions
that read them:

- `cardiology/indication`: an ECG (93000/93005/93010) or echo on a claim that sends
  documentation needs a documented ordering indication, else review (documentation,
  provider);
- `cardiology/signed-report`: the interpretation (93000, 93010, echo without TC) needs a
  signed report, else review;
- `cardiology/documentation-not-sent`: a claim with an ECG or echo and no documentation
  section at all (an 837 carries none) gets one claim-level `info`, not a review per
  line: documentation the transaction cannot carry is not missing from the record;
- `cardiology/stress-test-includes-ecg`: ECGs 93000-93010 and rhythm strips 93040-93042
  billed with a stress test 93015-93018 the same day, CO-236, unless 59/XE/XP/XS/XU is on
  either line (NCCI PTP modifier indicator 1);
- `cardiology/em-with-stress-test`: an E/M with a stress test the same day needs modifier
  25, else CO-97 + N20.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cleanclaim.engine.hookspecs import (
    Claim,
    Date,
    DocumentationSection,
    Flag,
    FunctionSpec,
    ListOf,
    Number,
    Record,
    ServiceLine,
    Text,
    context_of,
    hookimpl,
)
from cleanclaim.engine.hookspecs import (
    Types as T,
)

__version__ = "0.1.0"

PACKS = Path(__file__).resolve().parent / "packs"

ECG_CODES = frozenset({"93000", "93005", "93010"})

_STUDY = Record(
    {
        "line": Number(1),  # the claim line the study is billed on (absent: every line)
        "indication": Text(),  # the ordering indication: sign, symptom or diagnosis
        "ordered_by": Text(),
        "report": Record(
            {
                "signed": Flag(),
                "signed_by": Text(),
                "signed_on": Date(),
                "findings": Text(),
            }
        ),
    }
)
SECTIONS = (
    DocumentationSection(
        "ecg",
        ListOf(_STUDY, single=True),
        "12-lead ECGs: the ordering indication and the signed "
        "interpretation report, per study (an object or a list).",
    ),
    DocumentationSection(
        "echo",
        ListOf(_STUDY, single=True),
        "Echocardiograms: the ordering indication and the signed "
        "interpretation report, per study (an object or a list).",
    ),
)


def section_for(line: ServiceLine | None) -> str:
    """The documentation section of the line's study: `ecg` or `echo`."""
    return "ecg" if line is not None and line.code in ECG_CODES else "echo"


def study_for(claim: Claim, line: ServiceLine | None) -> dict[str, Any] | None:
    """The documented study of this line: the one naming the line, else one naming none."""
    if line is None:
        return None
    studies = context_of(claim).documentation.get(section_for(line)) or []
    for study in studies:
        if study.get("line") == line.line:
            return dict(study)
    for study in studies:
        if "line" not in study:
            return dict(study)
    return None


def documentation_sent(claim: Claim, line: ServiceLine | None) -> bool:
    """True when the claim carries any documentation section: an X12 837 or a bare claim
    carries none, and then nothing can be said about the record."""
    return any(value is not None for value in claim.documentation.values())


def cardiology_section(claim: Claim, line: ServiceLine | None) -> str:
    return section_for(line)


def cardiology_indication(claim: Claim, line: ServiceLine | None) -> str | None:
    study = study_for(claim, line)
    return study.get("indication") if study else None


def cardiology_report_signed(claim: Claim, line: ServiceLine | None) -> bool:
    study = study_for(claim, line)
    return bool(study and (study.get("report") or {}).get("signed") is True)


LINE = frozenset({"line"})
FUNCTIONS = (
    FunctionSpec(
        "documentation_sent",
        (),
        T.BOOL,
        documentation_sent,
        "true when the claim carries any documentation section (an 837 carries none)",
        contextual=True,
        scopes=frozenset({"line", "claim"}),
    ),
    FunctionSpec(
        "cardiology_section",
        (),
        T.STR,
        cardiology_section,
        "the documentation section of this line's study: ecg or echo",
        contextual=True,
        scopes=LINE,
    ),
    FunctionSpec(
        "cardiology_indication",
        (),
        T.STR.maybe(),
        cardiology_indication,
        "the documented ordering indication of this line's ECG or echo",
        contextual=True,
        scopes=LINE,
    ),
    FunctionSpec(
        "cardiology_report_signed",
        (),
        T.BOOL,
        cardiology_report_signed,
        "true when this line's ECG or echo has a signed interpretation report",
        contextual=True,
        scopes=LINE,
    ),
)


@hookimpl
def cleanclaim_policy_packs() -> Sequence[Path]:
    return [PACKS / "cardiology"]


@hookimpl
def cleanclaim_functions() -> Sequence[FunctionSpec]:
    return FUNCTIONS


@hookimpl
def cleanclaim_documentation_sections() -> Sequence[DocumentationSection]:
    return SECTIONS
