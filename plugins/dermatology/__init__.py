"""The dermatology plugin: lesion excision coding, repairs, destruction, cosmetic removal.

- `excision-code` (Python): an excision code 11400-11446 / 11600-11646 must match the
  documented lesion's behavior (pathology), anatomic group and excised diameter (lesion +
  2 x narrowest margin); a mismatch names the code the documentation supports (coding);
  `lesion-documentation`: missing site, size or margin, review; `pathology-pending`:
  no final pathology yet, review;
- language rules (packs/dermatology): simple repair with an excision, any repair with
  benign excisions of 0.5 cm or less only (CO-97); 17003 at most 13 units, 17003 needs
  17000, 17004 never with 17000/17003; removal of a benign lesion (L82.1, D22.*, ...)
  without a documented symptom or indication, CO-50 + N383 (medical necessity).

The `lesions` documentation section: per lesion the claim line, site, laterality, size
and narrowest margin (cm or mm), method, pathology, symptoms and repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from cleanclaim.dsl import types as T
from cleanclaim.engine.hookspecs import (
    Claim,
    ClaimContext,
    DocumentationSection,
    Finding,
    Length,
    ListOf,
    Number,
    Record,
    RuleInfo,
    ServiceLine,
    Text,
    context_of,
    hookimpl,
)
from cleanclaim.plugins.dermatology import lesions

__version__ = "0.1.0"

PACKS = Path(__file__).resolve().parent / "packs"

LESIONS_SECTION = DocumentationSection(
    "lesions",
    ListOf(Record({
        "id": Text(),
        "line": Number(1),            # the claim line that bills this lesion's removal
        "site": Text(lesions.SITES),
        "laterality": Text(("left", "right", "bilateral", "midline")),
        "size": Length(),             # greatest clinical diameter before excision
        "margin": Length(),           # narrowest margin
        "method": Text(("excision", "shave", "destruction", "biopsy", "mohs", "other")),
        "pathology": Text(("benign", "malignant", "uncertain", "pending")),
        "symptoms": ListOf(Text()),
        "repair": Record({"type": Text(("simple", "intermediate", "complex")),
                          "length": Length()}),
    }, required=("line",))),
    "Skin lesions removed: claim line, site, laterality, size and narrowest margin (cm or "
    "mm), method, pathology result, symptoms, repair type and length.")


def _documented(claim: Claim, line: ServiceLine | None) -> list[dict[str, object]]:
    if line is None:
        return []
    return lesions.lesions_of(line, context_of(claim).documentation.get("lesions") or [])


def lesion_indication_documented(claim: Claim, line: ServiceLine | None) -> bool:
    """True when a lesion documented for this line has a symptom or indication that makes
    its removal medically necessary."""
    for lesion in _documented(claim, line):
        symptoms = lesion.get("symptoms")
        for symptom in symptoms if isinstance(symptoms, list) else ():
            if str(symptom).strip().lower().replace(" ", "_") in lesions.INDICATIONS:
                return True
    return False


def lesion_excised_diameter(claim: Claim, line: ServiceLine | None) -> float | None:
    """The excised diameter (cm) of the (first) lesion documented for this line."""
    for lesion in _documented(claim, line):
        return lesions.excised_diameter(lesion)
    return None


def code_units_on_date(claim: Claim, line: ServiceLine | None) -> float | None:
    """Units of this line's code summed over the claim's lines on the line's date."""
    if line is None:
        return None
    return sum(o.units or 0 for o in claim.lines
               if o.code == line.code and o.service_date == line.service_date)


LINE = frozenset({"line"})
FUNCTIONS = (
    T.FunctionSpec("lesion_indication_documented", (), T.BOOL, lesion_indication_documented,
                   "true when a lesion documented for this line has a medical indication "
                   "(bleeding, pain, itching, inflammation, obstruction, change, suspected "
                   "malignancy)", contextual=True, scopes=LINE),
    T.FunctionSpec("lesion_excised_diameter", (), T.NUMBER.maybe(), lesion_excised_diameter,
                   "excised diameter in cm (lesion + 2 x narrowest margin) of the lesion "
                   "documented for this line", contextual=True, scopes=LINE),
    T.FunctionSpec("code_units_on_date", (), T.NUMBER.maybe(), code_units_on_date,
                   "units of this line's code on its date, summed over the claim's lines",
                   contextual=True, scopes=LINE),
)


@hookimpl
def cleanclaim_policy_packs() -> Sequence[Path]:
    return [PACKS / "dermatology"]


@hookimpl
def cleanclaim_functions() -> Sequence[T.FunctionSpec]:
    return FUNCTIONS


@hookimpl
def cleanclaim_documentation_sections() -> Sequence[DocumentationSection]:
    return [LESIONS_SECTION]


@hookimpl
def cleanclaim_rules() -> Sequence[RuleInfo]:
    return lesions.RULES


@hookimpl
def cleanclaim_check_line(claim: Claim, line: ServiceLine,
                          context: ClaimContext) -> Iterable[Finding] | None:
    if line.code not in lesions.EXCISION_CODES:
        return None
    return lesions.check_excision(line, context.documentation.get("lesions") or [])
