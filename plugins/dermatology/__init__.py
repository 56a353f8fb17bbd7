"""The dermatology plugin: lesion excision coding, repairs, destruction, cosmetic removal.

- `excision-code` (Python): an excision code 11400-11446 / 11600-11646 must match the
  documented lesion's behavior (pathology), anatomic group and excised diameter (lesion +
  2 x narrowest margin); a mismatch names the code the documentation supports (coding);
  `lesion-documentation`: missing site, size or margin, review; `pathology-pending`:
  no final pathology yet, review;
  a re-excision of a malignant lesion's margin keeps its 116xx code whatever the
  re-excision pathology; `excision-diagnosis`: 116xx needs a malignant, in-situ or
  uncertain diagnosis, else CO-11;
- language rules (packs/dermatology): simple repair with an excision, any repair with
  benign excisions of 0.5 cm or less only (CO-236, unless 59/XE/XP/XS/XU on either line);
  17003 at most 13 units, 17003 needs 17000, 17004 never with 17000/17003; a biopsy with
  the removal of a lesion the same day needs XS/59 (another lesion) or 58 (CO-236);
  a shave and an excision of the same lesion the same day (NCCI III.E.1: one removal code
  per lesion): CO-236 on the shave when the claim shows one lesion (one documented lesion
  id, or the same pointed diagnoses without anatomic modifiers, 59 or XS), a review when
  it cannot show it (other diagnoses or sites, or XE/XP/XU, without those marks);
- `cosmetic-removal` (Python; Medicare or packs that opt in, in the states of the
  contractor publishing LCD L35498): removal of a benign lesion (L82.1, D22.*, ...) with
  none of the LCD's indications documented, review PR-96 + N383 (advise GY): a review,
  not a denial, while the LCD's publisher (Novitas JH/JL) is unverified [K]; no service
  state: review.

The `lesions` documentation section: per lesion the claim line, site, laterality, size
and narrowest margin (cm or mm), method, pathology, symptoms and repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from cleanclaim.engine.hookspecs import (
    Claim,
    ClaimContext,
    DocumentationSection,
    Finding,
    Flag,
    FunctionSpec,
    Length,
    ListOf,
    Number,
    Record,
    RuleInfo,
    ServiceLine,
    Text,
    context_of,
    dotted_icd10,
    finding,
    hookimpl,
)
from cleanclaim.engine.hookspecs import (
    Types as T,
)
from cleanclaim.plugins import scope
from cleanclaim.plugins.dermatology import lesions

__version__ = "0.1.0"

PACKS = Path(__file__).resolve().parent / "packs"

LESIONS_SECTION = DocumentationSection(
    "lesions",
    ListOf(
        Record(
            {
                "id": Text(),
                "line": Number(1),  # the claim line that bills this lesion's removal
                "site": Text(lesions.SITES),
                "laterality": Text(("left", "right", "bilateral", "midline")),
                "size": Length(),  # greatest clinical diameter before excision
                "margin": Length(),  # narrowest margin
                "method": Text(("excision", "shave", "destruction", "biopsy", "mohs", "other")),
                "pathology": Text(("benign", "malignant", "uncertain", "pending")),
                "symptoms": ListOf(Text()),
                "re_excision": Flag(),  # a re-excision to clear the margin of an earlier one
                "repair": Record(
                    {"type": Text(("simple", "intermediate", "complex")), "length": Length()}
                ),
            },
            required=("line",),
        )
    ),
    "Skin lesions removed: claim line, site, laterality, size and narrowest margin (cm or "
    "mm), method, pathology result, symptoms, repair type and length.",
)


def _documented(claim: Claim, line: ServiceLine | None) -> list[dict[str, object]]:
    if line is None:
        return []
    return lesions.lesions_of(line, context_of(claim).documentation.get("lesions") or [])


def lesion_indication_documented(claim: Claim, line: ServiceLine | None) -> bool:
    """True when a lesion documented for this line has a symptom or indication that makes
    its removal medically necessary."""
    return any(lesions.has_indication(lesion) for lesion in _documented(claim, line))


def lesion_excised_diameter(claim: Claim, line: ServiceLine | None) -> float | None:
    """The excised diameter (cm) of the (first) lesion documented for this line."""
    for lesion in _documented(claim, line):
        return lesions.excised_diameter(lesion)
    return None


def code_units_on_date(claim: Claim, line: ServiceLine | None) -> float | None:
    """Units of this line's code summed over the claim's lines on the line's date."""
    if line is None:
        return None
    return sum(
        o.units or 0
        for o in claim.lines
        if o.code == line.code and o.service_date == line.service_date
    )


def removal_lesion_relation(
    claim: Claim, line: ServiceLine | None, other_number: float | None
) -> str | None:
    """ "separate", "same" or "unclear": how the claim relates this line's lesion removal
    to the removal on claim line `other_number` (NCCI III.E.1; lesions.removal_relation)."""
    if line is None or other_number is None:
        return None
    other = next((o for o in claim.lines if o.line == other_number), None)
    if other is None:
        return None
    documented = context_of(claim).documentation.get("lesions") or []
    return lesions.removal_relation(line, other, documented)


LINE = frozenset({"line"})
FUNCTIONS = (
    FunctionSpec(
        "lesion_indication_documented",
        (),
        T.BOOL,
        lesion_indication_documented,
        "true when a lesion documented for this line has a medical indication "
        "LCD L35498 lists (bleeding, intense itching, pain, change, recent "
        "enlargement, ...)",
        contextual=True,
        scopes=LINE,
    ),
    FunctionSpec(
        "lesion_excised_diameter",
        (),
        T.NUMBER.maybe(),
        lesion_excised_diameter,
        "excised diameter in cm (lesion + 2 x narrowest margin) of the lesion "
        "documented for this line",
        contextual=True,
        scopes=LINE,
    ),
    FunctionSpec(
        "removal_lesion_relation",
        (T.NUMBER,),
        T.STR.maybe(),
        removal_lesion_relation,
        "how the claim relates this line's lesion removal to the one on the given "
        "claim line: separate (59/XS or different anatomic modifiers), same (one "
        "documented lesion, or the same pointed diagnoses and no mark), unclear",
        contextual=True,
        scopes=LINE,
    ),
    FunctionSpec(
        "code_units_on_date",
        (),
        T.NUMBER.maybe(),
        code_units_on_date,
        "units of this line's code on its date, summed over the claim's lines",
        contextual=True,
        scopes=LINE,
    ),
)


@hookimpl
def cleanclaim_policy_packs() -> Sequence[Path]:
    return [PACKS / "dermatology"]


@hookimpl
def cleanclaim_functions() -> Sequence[FunctionSpec]:
    return FUNCTIONS


@hookimpl
def cleanclaim_documentation_sections() -> Sequence[DocumentationSection]:
    return [LESIONS_SECTION]


@hookimpl
def cleanclaim_rules() -> Sequence[RuleInfo]:
    return lesions.RULES


def check_cosmetic(claim: Claim, line: ServiceLine, context: ClaimContext) -> list[Finding]:
    """LCD L35498: removing a benign lesion (seborrheic keratosis, nevus, cyst, skin tag)
    with none of the LCD's indications documented is cosmetic, excluded from Medicare
    coverage (SSA 1862(a)(10)) with the beneficiary liable: PR-96 + N383, advise GY.
    Applies to Medicare claims (or packs that opt in) in the publishing contractor's
    states; a claim without a service state is a review, one outside them is not judged by
    this LCD (audit 2026-12 rule 40, FD12)."""
    if not any(d.startswith(lesions.COSMETIC_LESION_PREFIXES) for d in line.pointed_diagnoses):
        return []
    documented = lesions.lesions_of(line, context.documentation.get("lesions") or [])
    if any(lesions.has_indication(lesion) for lesion in documented):
        return []
    if not scope.applies(claim, context, "dermatology/cosmetic-removal", scope.MEDICARE):
        return []
    state = getattr(claim, "service_state", None)
    shown = ", ".join(dotted_icd10(d) for d in line.pointed_diagnoses)
    what = (
        f"{line.code} removes a benign lesion ({shown}) with none of the indications "
        "LCD L35498 "
        "lists documented (bleeding, intense itching, pain, change in appearance, recent "
        "enlargement, history of malignancy, obstruction of an orifice, clinical "
        "uncertainty, recurrent trauma, visual restriction, prior suspicious biopsy)"
    )
    reference = lesions.L35498
    if state is None or state in lesions.L35498_PART_STATES:
        where = (
            "the claim has no service state"
            if state is None
            else f"in {state} the LCD covers some counties only"
        )
        return [
            finding(
                "cosmetic-removal",
                f"{what}; {where}: check whether the contractor "
                "of the place of service applies L35498 or its own LCD",
                severity="review",
                group="PR",
                carc="96",
                rarc=["N383"],
                root_cause="coverage",
                reference=reference,
            )
        ]
    if state not in lesions.L35498_STATES:
        return []
    if "GY" in line.modifiers:
        return [
            finding(
                "cosmetic-removal",
                f"{what}: with GY the denial is expected and the patient is liable",
                severity="info",
                group="PR",
                carc="96",
                rarc=["N383"],
                root_cause="coverage",
                reference=reference,
            )
        ]
    # Which states L35498 governs rests on its publisher (Novitas, JH/JL), which no public
    # source at hand confirms [K] (docs/audit-2026-12-status.md, rule 40): the finding is
    # a review until it is verified on the CMS Medicare Coverage Database.
    return [
        finding(
            "cosmetic-removal",
            f"{what}: cosmetic, not covered; the patient is "
            "liable (append GY), or document the indication; check that the "
            f"contractor for {state} applies L35498 (its publisher, Novitas JH/JL, "
            "is not verified here)",
            severity="review",
            group="PR",
            carc="96",
            rarc=["N383"],
            root_cause="coverage",
            reference=reference,
        )
    ]


@hookimpl
def cleanclaim_check_line(
    claim: Claim, line: ServiceLine, context: ClaimContext
) -> Iterable[Finding] | None:
    out: list[Finding] = []
    if line.code in lesions.BENIGN_REMOVAL:
        out.extend(check_cosmetic(claim, line, context))
    if line.code in lesions.EXCISION_CODES:
        out.extend(lesions.check_excision_diagnosis(line))
        out.extend(lesions.check_excision(line, context.documentation.get("lesions") or []))
    return out or None
