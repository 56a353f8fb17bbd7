"""The plugin hook API: the hooks a cleanclaim plugin may implement and the types they use.

A plugin is an ordinary Python module registered under the entry-point group
`cleanclaim.plugins`; its hook functions are marked with `hookimpl`:

```python
from cleanclaim.engine.hookspecs import ClaimContext, finding, hookimpl

@hookimpl
def cleanclaim_check_line(claim, line, context):
    if line.code == "99999":
        return [finding("no-99999", "99999 is not billable here", severity="deny",
                        carc="4", root_cause="coding")]
    return None
```

The engine calls hooks only through the facade in `engine/plugins.py`. Every finding a
plugin produces is kept; a claim's status is its worst finding. `rule` of a plugin finding
always reads `<plugin>@<version>/<rule>`. `docs/plugins.md` documents every hook with a
worked example (a test keeps the two in step).

Load-time hooks (`cleanclaim_policy_packs`, `cleanclaim_functions`,
`cleanclaim_documentation_sections`, `cleanclaim_rules`) run once, when an engine is
built. Check-time hooks (`cleanclaim_derive_facts`, `cleanclaim_check_line`,
`cleanclaim_check_claim`) run for every claim, in this order, around the policy packs:

1. documentation sections declared by plugins are validated (bad data becomes a finding);
2. `cleanclaim_derive_facts` of each plugin;
3. the payer pack, then each plugin's pack;
4. `cleanclaim_check_line` for each line, then `cleanclaim_check_claim`.

Plugins are called in the order of their names. An exception in a hook becomes a `review`
finding naming the plugin for that claim; the other plugins and claims go on.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from cleanclaim.dsl import types as _types
from cleanclaim.dsl.codesets.icd10cm import dotted as dotted_icd10
from cleanclaim.dsl.errors import did_you_mean
from cleanclaim.dsl.types import FunctionSpec
from cleanclaim.dsl.vocabulary import DEFAULT_OWNER, Owner, RootCause, Severity
from cleanclaim.engine.decision import Finding
from cleanclaim.engine.model import Claim, ServiceLine, json_type

PROJECT = "cleanclaim"
ENTRY_POINT_GROUP = "cleanclaim.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# What a plugin needs, importable from here: the hook marker, the contribution types, the
# claim model it reads and the finding it returns.
__all__ = [
    "ENTRY_POINT_GROUP",
    "HOOK_NAMES",
    "Claim",
    "ClaimContext",
    "Date",
    "DocumentationProblem",
    "DocumentationSection",
    "Finding",
    "Flag",
    "FunctionSpec",
    "Length",
    "ListOf",
    "Number",
    "Owner",
    "Record",
    "RootCause",
    "RuleInfo",
    "Schema",
    "ServiceLine",
    "Severity",
    "Text",
    "Types",
    "context_of",
    "dotted_icd10",
    "finding",
    "hookimpl",
    "hookspec",
]


# ---- what plugins contribute ----------------------------------------------------------


class Types:
    """The value types of the policy language, for the functions a plugin adds to it:
    `FunctionSpec("name", (Types.CODE,), Types.BOOL, fn)`; `Types.NUMBER.maybe()` for a
    result that may be missing. Plugins take them from here, not from `cleanclaim.dsl`
    (docs/architecture.md, layer rule 3)."""

    BOOL = _types.BOOL
    NUMBER = _types.NUMBER
    MONEY = _types.MONEY
    DATE = _types.DATE
    STR = _types.STR
    CODE = _types.CODE
    ICD10 = _types.ICD10
    MODIFIER = _types.MODIFIER


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule a plugin applies in Python (rules written in the language declare
    themselves). `id` is the plugin-local name (`eight-minute-rule`); findings show it as
    `<plugin>@<version>/<id>`."""

    id: str
    title: str
    reference: str
    root_cause: str


@dataclass(frozen=True, slots=True)
class DocumentationProblem:
    """A value in a documentation section that does not fit the section's schema."""

    where: str  # e.g. "documentation.lesions[0].size"
    message: str


class Schema:
    """The type of a documentation value: checks a JSON value and returns it parsed.

    A value that does not fit adds a `DocumentationProblem` naming the field and comes
    back as None, so a rule sees it as missing; checking never raises."""

    __slots__ = ()

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _shown(value: Any) -> str:
    """The kind of a documentation value, its text shown (documentation is the provider's
    own description of the service, not member data)."""
    return json_type(value, show_text=True)


def _key(text: str) -> str:
    return re.sub(r"[\s-]+", "_", text.strip().lower())


@dataclass(frozen=True, slots=True)
class Text(Schema):
    """Text; with `choices`, one of them (case, spaces and dashes do not matter) and the
    parsed value is the choice as written here."""

    choices: tuple[str, ...] = ()

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not self.choices:
            return str(value)
        if not isinstance(value, str) or not value.strip():
            problems.append(DocumentationProblem(where, f"must be text, not {_shown(value)}"))
            return None
        if not self.choices:
            return value.strip()
        wanted = _key(value)
        for choice in self.choices:
            if _key(choice) == wanted:
                return choice
        hint = did_you_mean(wanted, self.choices)
        problems.append(
            DocumentationProblem(
                where,
                f"`{value}` is not one of: {', '.join(self.choices)}"
                + (f" ({hint})" if hint else ""),
            )
        )
        return None

    def describe(self) -> str:
        return f"one of {', '.join(self.choices)}" if self.choices else "text"


@dataclass(frozen=True, slots=True)
class Number(Schema):
    """A number (a JSON number or a numeric string), at least `minimum` when given."""

    minimum: float | None = None

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value) if "." in value else int(value)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            problems.append(DocumentationProblem(where, f"must be a number, not {_shown(value)}"))
            return None
        if self.minimum is not None and number < self.minimum:
            problems.append(
                DocumentationProblem(where, f"must be at least {self.minimum:g}, not {number:g}")
            )
            return None
        return number

    def describe(self) -> str:
        return "number" if self.minimum is None else f"number >= {self.minimum:g}"


_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True, slots=True)
class Date(Schema):
    """A date written YYYY-MM-DD."""

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        if isinstance(value, str) and _ISO_DATE.match(value.strip()):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        problems.append(
            DocumentationProblem(where, f"must be a date YYYY-MM-DD, not {_shown(value)}")
        )
        return None

    def describe(self) -> str:
        return "date (YYYY-MM-DD)"


@dataclass(frozen=True, slots=True)
class Flag(Schema):
    """true or false."""

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        if isinstance(value, bool):
            return value
        problems.append(DocumentationProblem(where, f"must be true or false, not {_shown(value)}"))
        return None

    def describe(self) -> str:
        return "true/false"


_LENGTH_TEXT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(cm|mm)\s*$", re.IGNORECASE)
_TO_CM = {"cm": 1.0, "mm": 0.1}


@dataclass(frozen=True, slots=True)
class Length(Schema):
    """A length in cm or mm: `{"value": 12, "unit": "mm"}` or the text `"1.2 cm"`. The
    parsed value is in centimetres (a bare number is refused: the unit must be said)."""

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        if isinstance(value, str):
            match = _LENGTH_TEXT.match(value)
            if match is None:
                problems.append(
                    DocumentationProblem(
                        where, f'`{value}` is not a length such as "1.2 cm" or "12 mm"'
                    )
                )
                return None
            return round(float(match.group(1)) * _TO_CM[match.group(2).lower()], 4)
        if isinstance(value, dict):
            unit = value.get("unit")
            amount = Number(0).check(value.get("value"), f"{where}.value", problems)
            if not isinstance(unit, str) or unit.strip().lower() not in _TO_CM:
                problems.append(
                    DocumentationProblem(f"{where}.unit", f"must be cm or mm, not {_shown(unit)}")
                )
                return None
            return None if amount is None else round(amount * _TO_CM[unit.strip().lower()], 4)
        hint = (
            ' (say the unit: {"value": ..., "unit": "cm"} or "1.2 cm")'
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else ""
        )
        problems.append(
            DocumentationProblem(where, f"must be a length in cm or mm, not {_shown(value)}{hint}")
        )
        return None

    def describe(self) -> str:
        return 'length: {value, unit: cm|mm} or "1.2 cm"'


@dataclass(frozen=True, slots=True)
class ListOf(Schema):
    """A list of `item`; with `single`, one item alone is taken as a list of one. Items
    that do not fit are left out (and reported)."""

    item: Schema
    single: bool = False

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        if not isinstance(value, list):
            if self.single and isinstance(value, dict):
                value = [value]
            else:
                problems.append(DocumentationProblem(where, f"must be a list, not {_shown(value)}"))
                return None
        out = []
        for i, item in enumerate(value):
            parsed = self.item.check(item, f"{where}[{i}]", problems)
            if parsed is not None:
                out.append(parsed)
        return out

    def describe(self) -> str:
        return f"list of {self.item.describe()}"


@dataclass(frozen=True, slots=True, eq=False)  # identity: `fields` is a dict
class Record(Schema):
    """An object with named fields. Fields that do not fit are left out (and reported);
    an unknown field is reported (with a "did you mean") unless `open`."""

    fields: Mapping[str, Schema]
    required: tuple[str, ...] = ()
    open: bool = False

    def check(self, value: Any, where: str, problems: list[DocumentationProblem]) -> Any:
        if not isinstance(value, dict):
            problems.append(DocumentationProblem(where, f"must be an object, not {_shown(value)}"))
            return None
        out: dict[str, Any] = {}
        for name, raw in value.items():
            schema = self.fields.get(name)
            if schema is None:
                if not self.open:
                    hint = did_you_mean(str(name), self.fields)
                    problems.append(
                        DocumentationProblem(
                            f"{where}.{name}",
                            "is not a known field"
                            + (f" ({hint})" if hint else f"; fields: {', '.join(self.fields)}"),
                        )
                    )
                continue
            if raw is None:
                continue
            parsed = schema.check(raw, f"{where}.{name}", problems)
            if parsed is not None:
                out[name] = parsed
        for name in self.required:
            if value.get(name) is None:
                problems.append(DocumentationProblem(f"{where}.{name}", "is required"))
        return out

    def describe(self) -> str:
        return "object"


@dataclass(frozen=True, slots=True)
class DocumentationSection:
    """A section of a claim's `documentation` object that a plugin reads and validates.

    Hooks and plugin functions see the parsed value (dates as `datetime.date`, lengths in
    cm) in `ClaimContext.documentation[name]`; a section the claim does not carry is
    absent there."""

    name: str
    schema: Schema
    description: str


class ClaimContext:
    """What plugins know about the claim being checked.

    documentation: validated sections, name -> parsed value (only sections some loaded
        plugin declares; the raw object stays in `claim.documentation`).
    facts: plugin name -> what its `cleanclaim_derive_facts` returned.
    opt_in: the plugin rules (`<plugin>/<rule>`) the claim's payer pack opts in to with
        `opt_in:` in its pack.yaml: a rule a plugin scopes to other payers applies to
        this claim too (see `cleanclaim.plugins.scope`)."""

    # A plain slotted class: one is made per claim checked with plugins.
    __slots__ = ("claim", "documentation", "facts", "opt_in")

    def __init__(
        self,
        claim: Claim,
        documentation: dict[str, Any] | None = None,
        facts: dict[str, Mapping[str, Any]] | None = None,
        opt_in: frozenset[str] = frozenset(),
    ) -> None:
        self.claim = claim
        self.documentation: dict[str, Any] = {} if documentation is None else documentation
        self.facts: dict[str, Mapping[str, Any]] = {} if facts is None else facts
        self.opt_in = opt_in


_CURRENT: contextvars.ContextVar[ClaimContext | None] = contextvars.ContextVar(
    "cleanclaim_claim_context", default=None
)


def context_of(claim: Claim) -> ClaimContext:
    """The context of `claim` while the engine checks it; for the language functions a
    plugin contributes, which receive only `(claim, line, *args)`. Outside a check, an
    empty context (no documentation)."""
    current = _CURRENT.get()
    if current is not None and current.claim is claim:
        return current
    return ClaimContext(claim)


def finding(
    rule: str,
    message: str,
    *,
    severity: str,
    carc: str,
    root_cause: str,
    group: str = "CO",
    rarc: Sequence[str] = (),
    line: int | None = None,
    owner: str | None = None,
    reference: str | None = None,
    kind: str | None = None,
) -> Finding:
    """A finding in the decision format, for a Python hook to return.

    `rule` is the plugin-local rule name; the engine adds `<plugin>@<version>/`. The owner
    defaults from the root cause (DESIGN.md). In `cleanclaim_check_line` a finding with no
    `line` gets the line being checked."""
    return Finding(
        rule,
        kind or root_cause,
        severity,
        line,
        group,
        carc,
        list(rarc),
        root_cause,
        owner or DEFAULT_OWNER.get(root_cause, "billing"),
        message,
        reference,
        None,
    )


# ---- the hooks ------------------------------------------------------------------------
# pluggy never calls these bodies; they define names, arguments and return types.


@hookspec
def cleanclaim_policy_packs() -> Sequence[Path]:  # type: ignore[empty-body]
    """Pack folders (each with a `pack.yaml` and `.policy` files) the plugin ships.

    When: once, when an engine is built, before any pack is checked.
    Combining: the folders of all plugins are used. A folder whose id is the plugin's
    name is the plugin's own pack: its rules (ids `<plugin>/...`) apply to every claim,
    whatever the payer, after the payer pack; findings read `<plugin>@<version>/...`.
    A folder with `library: true` (id `<plugin>-<something>`) is a library that payer
    packs and plugin packs may `include` for its value sets. Plugin packs are compiled
    like payer packs: an error stops the engine with file:line:column.
    """


@hookspec
def cleanclaim_functions() -> Sequence[FunctionSpec]:  # type: ignore[empty-body]
    """Functions the policy language may call (`FunctionSpec`s, as the built-ins are).

    When: once, when an engine is built, before any pack is checked; the checker checks
    every call against them (name, argument count and types, scope) like a built-in.
    Combining: all plugins' functions join the built-ins, visible to payer and plugin
    packs alike; a name defined twice (by two plugins, or shadowing a built-in) is a load
    error naming both. A contextual function receives `(claim, line, *args)`; use
    `context_of(claim)` for the validated documentation. An exception inside a function
    becomes a `review` finding naming the plugin.
    """


@hookspec
def cleanclaim_documentation_sections() -> Sequence[DocumentationSection]:  # type: ignore[empty-body]
    """Sections of the claim's `documentation` object the plugin reads, with their schema.

    When: declared once, when an engine is built; each claim's sections are validated
    before any check-time hook or rule runs.
    Combining: a section name belongs to one plugin (declared twice: a load error naming
    both). A value that does not fit the schema gives a `review` finding
    `<plugin>@<version>/documentation-data` naming the field; the value is then treated as
    missing.
    """


@hookspec
def cleanclaim_rules() -> Sequence[RuleInfo]:  # type: ignore[empty-body]
    """The rules the plugin applies in Python (its language rules declare themselves).

    When: once, when an engine is built and by `cleanclaim plugins` (rule count).
    Combining: listed per plugin; ids are plugin-local.
    """


@hookspec
def cleanclaim_derive_facts(claim: Claim, context: ClaimContext) -> Mapping[str, Any] | None:
    """Facts derived from the claim and its documentation before any rule runs.

    When: for every claim, after documentation is validated, before the payer pack.
    Combining: each plugin's mapping is stored as `context.facts[<plugin>]`; plugins run
    in name order and must not depend on each other's facts. A plugin may also fill a
    claim field the claim leaves empty (e.g. `line.minutes` from documented minutes) so
    that every pack sees it; it must never overwrite a value the claim carries.
    """


@hookspec
def cleanclaim_check_line(
    claim: Claim, line: ServiceLine, context: ClaimContext
) -> Iterable[Finding] | None:
    """Findings for one service line, computed in Python.

    When: for every line of every claim, after the payer pack and the plugin packs.
    Combining: every finding of every plugin is kept (None or [] for none); `rule` gets
    the `<plugin>@<version>/` prefix, `line` defaults to this line.
    """


@hookspec
def cleanclaim_check_claim(claim: Claim, context: ClaimContext) -> Iterable[Finding] | None:
    """Findings for the whole claim (e.g. across lines or dates), computed in Python.

    When: once per claim, last (after `cleanclaim_check_line`).
    Combining: every finding of every plugin is kept; `rule` gets the
    `<plugin>@<version>/` prefix.
    """


HOOK_NAMES: tuple[str, ...] = (
    "cleanclaim_policy_packs",
    "cleanclaim_functions",
    "cleanclaim_documentation_sections",
    "cleanclaim_rules",
    "cleanclaim_derive_facts",
    "cleanclaim_check_line",
    "cleanclaim_check_claim",
)
