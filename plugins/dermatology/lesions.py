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

SITES = ("trunk", "arm", "leg", "scalp", "neck", "hand", "foot", "genitalia", "face", "ear",
         "eyelid", "nose", "lip", "mucous_membrane")
GROUP_OF_SITE = {
    **dict.fromkeys(("trunk", "arm", "leg"), "trunk_arms_legs"),
    **dict.fromkeys(("scalp", "neck", "hand", "foot", "genitalia"),
                    "scalp_neck_hands_feet_genitalia"),
    **dict.fromkeys(("face", "ear", "eyelid", "nose", "lip", "mucous_membrane"),
                    "face_ears_eyelids_nose_lips_mucous_membrane"),
}
GROUP_LABEL = {
    "trunk_arms_legs": "trunk/arms/legs",
    "scalp_neck_hands_feet_genitalia": "scalp/neck/hands/feet/genitalia",
    "face_ears_eyelids_nose_lips_mucous_membrane":
        "face/ears/eyelids/nose/lips/mucous membrane",
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
    for (behavior, group), first in FIRST_CODE.items() for _, last in BANDS}

INDICATIONS = ("bleeding", "pain", "itching", "inflammation", "obstruction", "change",
               "suspected_malignancy")

D1 = "PAYER_RULES.md D1 (excised diameter = lesion + 2 x narrowest margin; code bands)"
RULES = (
    RuleInfo("excision-code", "Excision code does not match the documented lesion",
             D1 + ", D2", "coding"),
    RuleInfo("lesion-documentation", "Excised lesion without documented site, size or margin",
             "PAYER_RULES.md D1, D12", "documentation"),
    RuleInfo("pathology-pending", "Excision billed before the pathology result",
             "PAYER_RULES.md D2 (code behavior from the final pathology)", "documentation"),
)


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


def check_excision(line: ServiceLine, lesions: list[dict[str, Any]]) -> list[Finding]:
    """The excision line against each lesion documented for it."""
    billed = EXCISION_CODES.get(line.code or "")
    if billed is None:
        return []
    mine = lesions_of(line, lesions)
    if not mine:
        return [finding(
            "lesion-documentation",
            f"excision {line.code} on line {line.line}: no lesion is documented for this line "
            "(documentation.lesions[].line)", severity="review", carc="16", rarc=["N706"],
            root_cause="documentation", reference=RULES[1].reference)]
    out = []
    for lesion in mine:
        missing = [name for name in ("site", "size", "margin") if lesion.get(name) is None]
        label = f"lesion {lesion['id']}" if "id" in lesion else "the lesion"
        if missing:
            out.append(finding(
                "lesion-documentation",
                f"excision {line.code}: {label} has no documented "
                f"{', '.join(missing)} (needed to choose the excision code)",
                severity="review", carc="16", rarc=["N706"], root_cause="documentation",
                reference=RULES[1].reference))
            continue
        behavior = BEHAVIOR_OF_PATHOLOGY.get(lesion.get("pathology") or "")
        if behavior is None:
            state = "pending" if lesion.get("pathology") == "pending" else "not documented"
            out.append(finding(
                "pathology-pending",
                f"excision {line.code}: the pathology result of {label} is {state}; benign "
                "(114xx) or malignant (116xx) follows the final pathology: hold the claim",
                severity="review", carc="16", rarc=["N706"], root_cause="documentation",
                reference=RULES[2].reference))
            behavior = billed[0]  # still check the site and size against the billed kind
        group = GROUP_OF_SITE[lesion["site"]]
        diameter = excised_diameter(lesion)
        assert diameter is not None
        expected = supported_code(behavior, group, diameter)
        if expected != line.code:
            out.append(finding(
                "excision-code",
                f"{line.code} does not match {label}: {behavior}, {lesion['site']} "
                f"({GROUP_LABEL[group]}), excised diameter {_cm(diameter)} "
                f"({_cm(lesion['size'])} + 2 x {_cm(lesion['margin'])}): the documentation "
                f"supports {expected}", severity="deny", carc="150", root_cause="coding",
                reference=RULES[0].reference))
    return out
