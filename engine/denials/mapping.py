"""The adjustment mapping (adjustments.csv) and the classifier that reads every CAS with it.

A row maps group code + CARC (+ RARC) to a category, and for a denial to a root cause and
an owner in the vocabulary of our findings (dsl/checker.py ROOT_CAUSES and OWNERS), with
the route to recover the money and a next step in plain words. Lookup, most specific
first (`AdjustmentMap.classify`):

0. the row of the group alone (carc `*`): a group that decides alone (CR corrections).
1. rows of the CARC with a RARC the payer sent (the line's LQ*HE plus the claim's MOA/MIA
   remarks): exact group before `*`. One answer wins; remark codes that give different
   answers leave the adjustment `unclassified` (and say which).
2. the row of the CARC alone (exact group, then `*`); a row of category `ambiguous` means
   the CARC needs its remark code: with none that decides, `unclassified`.
3. nothing: `unclassified`, naming the code. Never a guess.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from cleanclaim.dsl.codesets.adjustment import GROUPS, carc, known_carcs, known_rarcs, rarc
from cleanclaim.dsl.errors import did_you_mean
from cleanclaim.dsl.vocabulary import OWNERS, ROOT_CAUSES

__all__ = [
    "CATEGORIES",
    "ROUTES",
    "AdjustmentMap",
    "Classification",
    "MappingError",
    "MappingRow",
    "load_mapping",
]

Category = Literal[
    "denial",
    "contractual",
    "patient_responsibility",
    "coordination_of_benefits",
    "correction",
    "unclassified",
]
CATEGORIES: Final = (
    "denial",
    "contractual",
    "patient_responsibility",
    "coordination_of_benefits",
    "correction",
)
_ROW_CATEGORIES: Final = (*CATEGORIES, "ambiguous")
ROUTES: Final = (
    "appeal",
    "corrected_claim",
    "bill_patient",
    "bill_other_payer",
    "write_off",
    "none",
)
COLUMNS: Final = (
    "group",
    "carc",
    "rarc",
    "category",
    "root_cause",
    "owner",
    "route",
    "label",
    "next_step",
    "source",
)


class MappingError(Exception):
    """The mapping file has errors; each line of the message says file:line, column, why."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.source = source
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class MappingRow:
    group: str
    carc: str
    rarc: str
    category: str
    root_cause: str
    owner: str
    route: str
    label: str
    next_step: str
    source: str
    line: int  # in the mapping file


@dataclass(frozen=True, slots=True)
class Classification:
    """What one adjustment means for the practice."""

    category: Category
    root_cause: str | None  # for denials (ROOT_CAUSES)
    owner: str | None  # for denials (OWNERS)
    route: str | None
    label: str  # our words: what happened
    next_step: str | None
    rarc: str | None  # the remark code that decided it, if one did
    why: str | None  # for `unclassified`: why no class was given
    row: int | None  # the mapping row used (file line)

    @property
    def is_denial(self) -> bool:
        return self.category == "denial"


class AdjustmentMap:
    """The rows of a mapping file, indexed for `classify`."""

    def __init__(self, rows: Iterable[MappingRow], source: str) -> None:
        self.source = source
        self.rows = list(rows)
        self._index: dict[tuple[str, str, str], MappingRow] = {
            (r.group, r.carc, r.rarc): r for r in self.rows
        }
        self._remarked = {(r.group, r.carc) for r in self.rows if r.rarc}
        self._cache: dict[tuple[str, str, tuple[str, ...]], Classification] = {}

    def classify(self, group: str, code: str, remarks: Sequence[str] = ()) -> Classification:
        """The class of CAS group/CARC given the remark codes sent with it."""
        key = (group, code, tuple(remarks))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._classify(group, code, remarks)
        return found

    def _classify(self, group: str, code: str, remarks: Sequence[str]) -> Classification:
        index = self._index
        group_row = index.get((group, "*", ""))
        if group_row is not None:
            return _of(group_row, None)
        by_remark: dict[str, MappingRow] = {}
        for g in (group, "*"):
            if (g, code) in self._remarked:
                for remark in remarks:
                    row = index.get((g, code, remark))
                    if row is not None and remark not in by_remark:
                        by_remark[remark] = row
        decided = {remark: row for remark, row in by_remark.items() if row.category != "ambiguous"}
        answers = {(r.category, r.root_cause, r.owner) for r in decided.values()}
        name = f"{group}-{code}"
        if len(answers) > 1:
            said = ", ".join(
                f"{m} says {r.root_cause or r.category}" for m, r in sorted(decided.items())
            )
            return _unclassified(f"{name}: its remark codes disagree ({said})")
        if decided:
            remark, row = sorted(decided.items())[0]
            return _of(row, remark)
        base = index.get((group, code, "")) or index.get(("*", code, ""))
        if base is not None and base.category != "ambiguous":
            return _of(base, None)
        if base is not None:
            sent = ", ".join(remarks) if remarks else "no remark code"
            extra = f" ({', '.join(sorted(by_remark))}: ambiguous too)" if by_remark else ""
            return _unclassified(
                f"{name} ({base.label}) needs a remark code that says why; the payer sent"
                f" {sent}{extra}",
                base,
            )
        known = carc(code)
        what = "not a CARC X12 defines" if known is None else "not in the mapping"
        return _unclassified(f"{name}: CARC {code} is {what}")


def _of(row: MappingRow, remark: str | None) -> Classification:
    category: Category = row.category  # type: ignore[assignment]  # checked on load
    return Classification(
        category,
        row.root_cause or None,
        row.owner or None,
        row.route or None,
        row.label,
        row.next_step or None,
        remark,
        None,
        row.line,
    )


def _unclassified(why: str, row: MappingRow | None = None) -> Classification:
    return Classification(
        "unclassified",
        None,
        None,
        row.route if row else None,
        row.label if row else "not classified",
        row.next_step if row else None,
        None,
        why,
        row.line if row else None,
    )


# --------------------------------------------------------------------------- loading


DEFAULT_MAPPING: Final = "adjustments.csv"


def load_mapping(path: Path | None = None) -> AdjustmentMap:
    """The shipped mapping (engine/denials/adjustments.csv), or the file at `path`.
    Raises `MappingError` with every problem of the file, each at its line."""
    if path is None:
        text = (
            resources.files("cleanclaim.engine.denials")
            .joinpath(DEFAULT_MAPPING)
            .read_text(encoding="utf-8")
        )
        source = "engine/denials/adjustments.csv"
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MappingError(source, [f"{source}: cannot read: {exc}"]) from exc
    return parse_mapping(text, source)


def parse_mapping(text: str, source: str) -> AdjustmentMap:
    problems: list[str] = []
    rows: list[MappingRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    header_seen = False
    carcs, rarcs = known_carcs(), known_rarcs()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        [cells] = list(csv.reader(io.StringIO(line)))
        cells = [c.strip() for c in cells]
        if not header_seen:
            header_seen = True
            if tuple(cells) != COLUMNS:
                problems.append(f"{source}:{number}: the header must be " + ",".join(COLUMNS))
                break
            continue
        at = f"{source}:{number}"
        if len(cells) != len(COLUMNS):
            problems.append(
                f"{at}: {len(cells)} cells, expected {len(COLUMNS)}"
                " (quote a value that holds a comma)"
            )
            continue
        group, code, remark, category, cause, owner, route, label, step, source_ = cells
        row = MappingRow(
            group, code, remark, category, cause, owner, route, label, step, source_, number
        )
        problems.extend(_row_problems(row, at, carcs, rarcs))
        key = (row.group, row.carc, row.rarc)
        if key in seen:
            problems.append(
                f"{at}: {'-'.join(k for k in key if k)} is already mapped at line {seen[key]}"
            )
        seen.setdefault(key, number)
        rows.append(row)
    if not header_seen:
        problems.append(f"{source}: the file has no header row")
    if problems:
        raise MappingError(source, problems)
    return AdjustmentMap(rows, source)


def _choice(value: str, allowed: Sequence[str], at: str, column: str) -> list[str]:
    if value in allowed:
        return []
    hint = did_you_mean(value, allowed) or "one of: " + ", ".join(allowed)
    return [f"{at}: column {column}: `{value}` is not allowed ({hint})"]


def _row_problems(
    row: MappingRow, at: str, carcs: frozenset[str], rarcs: frozenset[str]
) -> list[str]:
    problems: list[str] = []
    if row.group != "*":
        problems += _choice(row.group, tuple(GROUPS), at, "group")
    if row.carc == "*":
        if row.group == "*" or row.rarc:
            problems.append(f"{at}: column carc: `*` needs a group and no rarc")
    elif row.carc not in carcs:
        problems.append(f"{at}: column carc: `{row.carc}` is not a CARC X12 defines")
    if row.rarc and row.rarc not in rarcs:
        problems.append(
            f"{at}: column rarc: `{row.rarc}` is not a RARC X12 defines"
            + (
                f" ({did_you_mean(row.rarc, sorted(rarcs))})"
                if did_you_mean(row.rarc, sorted(rarcs))
                else ""
            )
        )
    elif row.rarc and rarc(row.rarc) is None:  # pragma: no cover - same list
        problems.append(f"{at}: column rarc: unknown `{row.rarc}`")
    problems += _choice(row.category, _ROW_CATEGORIES, at, "category")
    if row.category == "denial":
        problems += _choice(row.root_cause, ROOT_CAUSES, at, "root_cause")
        problems += _choice(row.owner, OWNERS, at, "owner")
    elif row.root_cause or row.owner:
        problems.append(
            f"{at}: columns root_cause/owner are only for a denial (this row is {row.category})"
        )
    problems += _choice(row.route, ROUTES, at, "route")
    for column in ("label", "next_step", "source"):
        if not getattr(row, column):
            problems.append(f"{at}: column {column} is empty")
    return problems
