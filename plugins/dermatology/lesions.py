"""Lesion excision codes from the documented lesion: behavior, anatomic group, excised
diameter.

Excised diameter = greatest clinical diameter + 2 x the narrowest margin (cm). Bands
for each group: <= 0.5, 0.6-1.0, 1.1-2.0, 2.1-3.0, 3.1-4.0, > 4.0 cm; the last code of
each group ends in 6. Benign: 11400-11406 trunk/arms/legs, 11420-11426 scalp/neck/hands/
feet/genitalia, 11440-11446 face/ears/eyelids/nose/lips/mucous membrane; malignant:
11600-11606, 11620-11626, 11640-11646, same groups. Behavior follows the final pathology
(uncertain behavior: benign).
Sources: PAYER_RULES.md D1, D2 (AAPC lesion measurement; AAD DermWorld June 2024).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cleanclaim.engine.hookspecs import (
    Finding,
    RuleInfo,
    ServiceLine,
    finding,
)

SITES = (
    "trunk",
    "arm",
    "leg",
    "scalp",
    "neck",
    "hand",
    "foot",
    "genitalia",
    "face",
    "ear",
    "eyelid",
    "nose",
    "lip",
    "mucous_membrane",
)
GROUP_OF_SITE = {
    **dict.fromkeys(("trunk", "arm", "leg"), "trunk_arms_legs"),
    **dict.fromkeys(
        ("scalp", "neck", "hand", "foot", "genitalia"), "scalp_neck_hands_feet_genitalia"
    ),
    **dict.fromkeys(
        ("face", "ear", "eyelid", "nose", "lip", "mucous_membrane"),
        "face_ears_eyelids_nose_lips_mucous_membrane",
    ),
}
GROUP_LABEL = {
    "trunk_arms_legs": "trunk/arms/legs",
    "scalp_neck_hands_feet_genitalia": "scalp/neck/hands/feet/genitalia",
    "face_ears_eyelids_nose_lips_mucous_membrane": "face/ears/eyelids/nose/lips/mucous membrane",
}
FIRST_CODE = {
    ("benign", "trunk_arms_legs"): 11400,
    ("benign", "scalp_neck_hands_feet_genitalia"): 11420,
    ("benign", "face_ears_eyelids_nose_lips_mucous_membrane"): 11440,
    ("malignant", "trunk_arms_legs"): 11600,
    ("malignant", "scalp_neck_hands_feet_genitalia"): 11620,
    ("malignant", "face_ears_eyelids_nose_lips_mucous_membrane"): 11640,
}
# Upper bound (cm, inclusive) of each band and the last digit of its code.
BANDS = ((0.5, 0), (1.0, 1), (2.0, 2), (3.0, 3), (4.0, 4), (float("inf"), 6))
BEHAVIOR_OF_PATHOLOGY = {"benign": "benign", "uncertain": "benign", "malignant": "malignant"}

EXCISION_CODES = {
    f"{first + last}": (behavior, group)
    for (behavior, group), first in FIRST_CODE.items()
    for _, last in BANDS
}

# The indications LCD L35498 lists for removing a benign lesion (the audit's reading of
# the LCD, PAYER_RULES.md D9): each documented symptom is read through the synonyms.
INDICATIONS = (
    "bleeding",
    "intense_itching",
    "pain",
    "change_in_physical_appearance",
    "recent_enlargement",
    "history_of_malignancy",
    "obstruction_of_an_orifice",
    "clinical_uncertainty",
    "recurrent_trauma",
    "visual_restriction",
    "prior_suspicious_biopsy",
    "inflammation",
    "infection",
)
INDICATION_SYNONYMS = {
    "itching": "intense_itching",
    "burning": "intense_itching",
    "irritation": "intense_itching",
    "change": "change_in_physical_appearance",
    "enlargement": "recent_enlargement",
    "obstruction": "obstruction_of_an_orifice",
    "suspected_malignancy": "clinical_uncertainty",
    "diagnostic_uncertainty": "clinical_uncertainty",
    "trauma": "recurrent_trauma",
    "obstructs_vision": "visual_restriction",
    "suspicious_biopsy": "prior_suspicious_biopsy",
}


def indication(symptom: object) -> str | None:
    """The L35498 indication a documented symptom names, or None."""
    key = str(symptom).strip().lower().replace(" ", "_").replace("-", "_")
    key = INDICATION_SYNONYMS.get(key, key)
    return key if key in INDICATIONS else None


def has_indication(lesion: Mapping[str, Any]) -> bool:
    symptoms = lesion.get("symptoms")
    return any(indication(s) is not None for s in (symptoms if isinstance(symptoms, list) else ()))


# Benign lesions whose removal is cosmetic unless a medical indication is documented:
# seborrheic keratosis (L82.1; L82.0 is inflamed, itself an indication), nevi (D22), other
# benign skin neoplasms (D23), follicular cysts (L72), skin tags (L91.8).
COSMETIC_LESION_PREFIXES = ("L821", "D22", "D23", "L72", "L918")
BENIGN_REMOVAL = frozenset(
    {
        "11200",
        "11201",
        *(str(c) for c in range(11300, 11314)),
        *(str(c) for c in range(11400, 11447)),
        "17110",
        "17111",
    }
)
# LCD L35498 (Removal of Benign Skin Lesions) is Novitas Solutions' (JH: AR, CO, LA, MS, NM,
# OK, TX; JL: DE, DC, MD, NJ, PA, and in Virginia only Arlington, Fairfax and Alexandria)
# [K: verify the contractor on the CMS Medicare Coverage Database]. Other contractors
# publish their own LCDs (CGS L34200) or none.
L35498_STATES = frozenset({"AR", "CO", "LA", "MS", "NM", "OK", "TX", "DE", "DC", "MD", "NJ", "PA"})
L35498_PART_STATES = frozenset({"VA"})  # a county, not the state, decides

# Malignant excision codes need a malignant, in-situ or uncertain-behavior diagnosis:
# C00-C96 malignant, D00-D09 in situ, D37-D49 uncertain or unspecified behavior.
MALIGNANT_EXCISIONS = frozenset(str(c) for c in range(11600, 11647))


def malignant_or_uncertain(code: str) -> bool:
    plain = code.replace(".", "").upper()
    if plain[:1] == "C":
        return True
    if plain[:1] == "D" and plain[1:3].isdigit():
        number = int(plain[1:3])
        return number <= 9 or 37 <= number <= 49
    return False


# NCCI Policy Manual 2025 ch. III section E.1: one removal code per lesion; lesions removed
# separately are reported "using anatomic modifiers or modifier 59 or XS to indicate
# different sites or lesions". Those are the marks a claim can carry (the anatomic list is
# ch. I section E's); XE/XP/XU say a separate encounter, practitioner or non-overlapping
# service, not a different lesion: with them the claim cannot show either way (review).
SEPARATE_LESION_MODIFIERS = frozenset({"59", "XS"})
OTHER_PTP_MODIFIERS = frozenset({"XE", "XP", "XU"})
ANATOMIC_MODIFIERS = frozenset(
    {
        "E1",
        "E2",
        "E3",
        "E4",
        "FA",
        *(f"F{i}" for i in range(1, 10)),
        "TA",
        *(f"T{i}" for i in range(1, 10)),
        "LT",
        "RT",
        "LC",
        "LD",
        "RC",
        "LM",
        "RI",
    }
)


def removal_relation(line: ServiceLine, other: ServiceLine, lesions: list[dict[str, Any]]) -> str:
    """How a claim relates two lesion removals of one date (NCCI III.E.1):

    - "separate": 59 or XS on either line, or both lines carry anatomic modifiers and
      they differ (the marks E.1 names for different sites or lesions);
    - "same": the documentation names one lesion (`id`) for both lines, or, with no such
      mark and no documentation telling them apart, both lines point to the same
      diagnoses: the claim reports one lesion with two removal codes;
    - "unclear": no mark, but the diagnoses or the documented lesions (id, site,
      laterality) differ, or XE/XP/XU is on a line: perhaps separate lesions without
      the modifier E.1 asks for.
    """
    if SEPARATE_LESION_MODIFIERS & (set(line.modifiers) | set(other.modifiers)):
        return "separate"
    mine = ANATOMIC_MODIFIERS & set(line.modifiers)
    theirs = ANATOMIC_MODIFIERS & set(other.modifiers)
    if mine and theirs and mine != theirs:
        return "separate"
    a, b = lesions_of(line, lesions), lesions_of(other, lesions)
    ids_a = {str(x["id"]) for x in a if x.get("id") is not None}
    ids_b = {str(x["id"]) for x in b if x.get("id") is not None}
    if ids_a & ids_b:
        return "same"
    if a and b and _told_apart(a, b, bool(ids_a and ids_b)):
        return "unclear"
    if OTHER_PTP_MODIFIERS & (set(line.modifiers) | set(other.modifiers)):
        return "unclear"  # a separate encounter or service, not the mark of another lesion
    same_dx = bool(line.pointed_diagnoses) and (
        set(line.pointed_diagnoses) == set(other.pointed_diagnoses)
    )
    return "same" if same_dx else "unclear"


def _told_apart(a: list[dict[str, Any]], b: list[dict[str, Any]], both_have_ids: bool) -> bool:
    """Whether the lesions documented for two lines are different ones: different ids, or
    a different site or laterality (each documented on both)."""
    if both_have_ids:
        return True
    for key in ("site", "laterality"):
        va = {x.get(key) for x in a} - {None}
        vb = {x.get(key) for x in b} - {None}
        if va and vb and not va & vb:
            return True
    return False


D1 = "PAYER_RULES.md D1 (excised diameter = lesion + 2 x narrowest margin; code bands)"
L35498 = (
    "LCD L35498 Removal of Benign Skin Lesions (indications; cosmetic removal is "
    "excluded, SSA 1862(a)(10), beneficiary liable: PR-96 + N383, modifier GY); "
    "PAYER_RULES.md D9"
)
RULES = (
    RuleInfo(
        "excision-code",
        "Excision code does not match the documented lesion",
        D1 + ", D2; CPT: re-excision to clear a malignant margin keeps the malignant code",
        "coding",
    ),
    RuleInfo(
        "excision-diagnosis",
        "Malignant excision code without a malignant or uncertain diagnosis",
        "PAYER_RULES.md D1, G13 (CO-11: diagnosis inconsistent with the procedure)",
        "coding",
    ),
    RuleInfo(
        "cosmetic-removal",
        "Benign lesion removal without a documented indication (Medicare, LCD L35498 jurisdiction)",
        L35498,
        "coverage",
    ),
    RuleInfo(
        "lesion-documentation",
        "Excised lesion without documented site, size or margin",
        "PAYER_RULES.md D1, D12",
        "documentation",
    ),
    RuleInfo(
        "pathology-pending",
        "Excision billed before the pathology result",
        "PAYER_RULES.md D2 (code behavior from the final pathology)",
        "documentation",
    ),
)
_REFERENCE = {r.id: r.reference for r in RULES}


def excised_diameter(lesion: Mapping[str, Any]) -> float | None:
    """Lesion size + 2 x narrowest margin, in cm (None when either is not documented)."""
    size, margin = lesion.get("size"), lesion.get("margin")
    if size is None or margin is None:
        return None
    return round(float(size) + 2 * float(margin), 4)


def supported_code(behavior: str, group: str, diameter: float) -> str:
    first = FIRST_CODE[(behavior, group)]
    for upper, last in BANDS:
        if diameter <= upper:
            return str(first + last)
    raise AssertionError("unreachable: the last band is unbounded")


def lesions_of(line: ServiceLine, lesions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [lesion for lesion in lesions if lesion.get("line") == line.line]


def _cm(x: float) -> str:
    return f"{x:g} cm"


RE_EXCISION_MODIFIERS = frozenset({"58", "78", "79"})


def is_margin_re_excision(line: ServiceLine, lesion: Mapping[str, Any]) -> bool:
    """A malignant excision code re-excising a malignant lesion's margin: documented as a
    re-excision (or billed with 58/78/79 in the global period) and pointing to a malignant
    or in-situ diagnosis. Its code stays 116xx even when the re-excision pathology is
    benign (CPT excision guidelines; audit 2026-12 FD13, probe misc2.json DERM-REEXC)."""
    return (
        line.code in MALIGNANT_EXCISIONS
        and (lesion.get("re_excision") is True or bool(RE_EXCISION_MODIFIERS & set(line.modifiers)))
        and any(malignant_or_uncertain(d) for d in line.pointed_diagnoses)
    )


def check_excision_diagnosis(line: ServiceLine) -> list[Finding]:
    """116xx needs a pointed malignant, in-situ or uncertain-behavior diagnosis: CO-11."""
    if line.code not in MALIGNANT_EXCISIONS or not line.pointed_diagnoses:
        return []
    if any(malignant_or_uncertain(d) for d in line.pointed_diagnoses):
        return []
    return [
        finding(
            "excision-diagnosis",
            f"malignant excision {line.code} points only to diagnoses that are neither malignant, "
            "in situ nor of uncertain behavior (C00-C96, D00-D09, D37-D49): code and diagnosis "
            "disagree",
            severity="deny",
            carc="11",
            root_cause="coding",
            reference=_REFERENCE["excision-diagnosis"],
        )
    ]


def check_excision(line: ServiceLine, lesions: list[dict[str, Any]]) -> list[Finding]:
    """The excision line against each lesion documented for it."""
    billed = EXCISION_CODES.get(line.code or "")
    if billed is None:
        return []
    mine = lesions_of(line, lesions)
    if not mine:
        return [
            finding(
                "lesion-documentation",
                f"excision {line.code} on line {line.line}: no lesion is documented for this line "
                "(documentation.lesions[].line)",
                severity="review",
                carc="16",
                rarc=["N706"],
                root_cause="documentation",
                reference=_REFERENCE["lesion-documentation"],
            )
        ]
    out = []
    for lesion in mine:
        missing = [name for name in ("site", "size", "margin") if lesion.get(name) is None]
        label = f"lesion {lesion['id']}" if "id" in lesion else "the lesion"
        if missing:
            out.append(
                finding(
                    "lesion-documentation",
                    f"excision {line.code}: {label} has no documented "
                    f"{', '.join(missing)} (needed to choose the excision code)",
                    severity="review",
                    carc="16",
                    rarc=["N706"],
                    root_cause="documentation",
                    reference=_REFERENCE["lesion-documentation"],
                )
            )
            continue
        behavior = BEHAVIOR_OF_PATHOLOGY.get(lesion.get("pathology") or "")
        if behavior == "benign" and is_margin_re_excision(line, lesion):
            behavior = "malignant"
        if behavior is None:
            state = "pending" if lesion.get("pathology") == "pending" else "not documented"
            out.append(
                finding(
                    "pathology-pending",
                    f"excision {line.code}: the pathology result of {label} is {state}; benign "
                    "(114xx) or malignant (116xx) follows the final pathology: hold the claim",
                    severity="review",
                    carc="16",
                    rarc=["N706"],
                    root_cause="documentation",
                    reference=_REFERENCE["pathology-pending"],
                )
            )
            behavior = billed[0]  # still check the site and size against the billed kind
        group = GROUP_OF_SITE[lesion["site"]]
        diameter = excised_diameter(lesion)
        assert diameter is not None
        expected = supported_code(behavior, group, diameter)
        if expected != line.code:
            out.append(
                finding(
                    "excision-code",
                    f"{line.code} does not match {label}: {behavior}, {lesion['site']} "
                    f"({GROUP_LABEL[group]}), excised diameter {_cm(diameter)} "
                    f"({_cm(lesion['size'])} + 2 x {_cm(lesion['margin'])}): the documentation "
                    f"supports {expected}",
                    severity="deny",
                    carc="150",
                    root_cause="coding",
                    reference=_REFERENCE["excision-code"],
                )
            )
    return out
