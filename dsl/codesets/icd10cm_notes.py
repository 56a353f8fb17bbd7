"""ICD-10-CM tabular-list instructions that concern a pair or the order of diagnoses: the
Excludes1 notes, and manifestation codes ("in diseases classified elsewhere").

Source: CDC/NCHS ICD-10-CM Tabular List (US government work, public domain), read through
the ``simple_icd_10_cm`` package by ``python -m cleanclaim.dsl.codesets.icd10cm_notes
build``, never at run time (the package costs ~2 s and ~190 MB to import), into
``data/icd10cm-excludes1.txt``:

    one header line (``# key=value | ...``), then one line per tabular item that has an
    Excludes1 note: ``OWNER<TAB>TARGET,TARGET,...``. An owner or target is a dotless code
    prefix (``E08``: E08 and every code under it; ``J698``) or a range of them
    (``O10-O11``: every code whose prefix of that length lies between). Blocks and
    chapters are written as the range of the categories they hold.

An Excludes1 note means "not coded here": the two conditions are not reported together
(ICD-10-CM Official Guidelines I.A.12.a), except when they are unrelated, which only the
record can tell - so a pair on one claim is a question for a person, not a denial.

A manifestation code - its title (or its category's) says "in diseases classified
elsewhere" - is never the first-listed diagnosis: the underlying condition is coded first
(Guidelines I.A.13). It is read from the shipped descriptions (``icd10cm.description``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from functools import cache, lru_cache

from cleanclaim.dsl.codesets import icd10cm

__all__ = ["excluded_pair", "is_manifestation"]

EXCLUDES1_FILE = "icd10cm-excludes1.txt"
# "in diseases classified elsewhere", "in other diseases classified elsewhere"
_MANIFESTATION = "diseases classified elsewhere"
_REFERENCE = re.compile(r"\(([^()]*)\)")
_TOKEN = re.compile(r"^[A-Z][0-9A-Z]{2}(\.[0-9A-Z]{0,4})?-?$")

_LONGEST = 10  # a written code ("S52.501A ") is never longer; a longer text is no code
Span = tuple[str, str]  # (low, high) dotless prefixes of one length; a prefix is (p, p)


def _span(token: str) -> Span | None:
    """`E08.-` -> (E08, E08); `O10-O11` -> (O10, O11); `J69.8` -> (J698, J698)."""
    token = token.strip().upper()
    if "-" in token[1:] and not token.endswith("-"):
        low, _, high = token.partition("-")
        low_key, high_key = icd10cm.normalize(low), icd10cm.normalize(high)
        if (
            _TOKEN.match(low.strip())
            and _TOKEN.match(high.strip())
            and len(low_key) == len(high_key)
            and low_key <= high_key
        ):
            return low_key, high_key
        return None
    if not _TOKEN.match(token):
        return None
    key = icd10cm.normalize(token.rstrip("-").rstrip("."))
    # a reference to a code of the tabular list; other parenthesised text is prose
    return (key, key) if icd10cm.is_code(key) else None


def _covers(span: Span, code: str) -> bool:
    low, high = span
    head = code[: len(low)]
    return len(code) >= len(low) and low <= head <= high


@cache
def _notes() -> tuple[tuple[Span, tuple[Span, ...]], ...]:
    path = icd10cm.DATA_DIR / EXCLUDES1_FILE
    notes: list[tuple[Span, tuple[Span, ...]]] = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        owner, _, targets = line.partition("\t")
        notes.append((_parse(owner), tuple(_parse(t) for t in targets.split(","))))
    return tuple(notes)


def _parse(text: str) -> Span:
    low, _, high = text.partition("-")
    return low, high or low


def _write(span: Span) -> str:
    return span[0] if span[0] == span[1] else f"{span[0]}-{span[1]}"


def excluded_pair(code: str, other: str) -> bool:
    """True when an Excludes1 note of ``code`` (or of a category, block or chapter above
    it) names ``other`` (or a category above it). Codes are dotless or dotted; a text
    longer than any code is none (answered without being remembered)."""
    if len(code) > _LONGEST or len(other) > _LONGEST:
        return False
    return _excluded_pair(icd10cm.normalize(code), icd10cm.normalize(other))


@lru_cache(maxsize=65_536)
def _excluded_pair(a: str, b: str) -> bool:
    if not a or not b or a == b:
        return False
    # A target that covers `code` itself (a block's note naming a range the code is in)
    # says nothing about this pair.
    return any(
        _covers(owner, a) and any(_covers(t, b) and not _covers(t, a) for t in targets)
        for owner, targets in _notes()
    )


def is_manifestation(code: str) -> bool:
    """True when the code's title, or its category's, says "in diseases classified
    elsewhere" (Guidelines I.A.13: never first-listed)."""
    if len(code) > _LONGEST:
        return False
    return _is_manifestation(icd10cm.normalize(code))


@lru_cache(maxsize=65_536)
def _is_manifestation(key: str) -> bool:
    if not icd10cm.is_code(key):
        return False
    titled = _manifestation_keys()
    return any(key[:n] in titled for n in range(3, len(key) + 1))


@cache
def _manifestation_keys() -> frozenset[str]:
    """The codes (dotless) whose own title says "diseases classified elsewhere", read
    from the shipped descriptions once and then kept in the on-disk cache (dsl/cache.py)
    under the descriptions file: reading ~98,000 descriptions was ~0.1 s of a cold check
    of one claim (issue 14)."""
    from cleanclaim.dsl.cache import PickleCache

    cache_ = PickleCache(
        "icd10cm-manifestations",
        sources=(f"codesets/data/{icd10cm.DESCRIPTIONS_FILE}",),
        salt=lambda: _MANIFESTATION,
        allowed={},
    )
    entry = cache_.entry("manifestation codes")
    if entry is not None:
        kept = cache_.load(entry)
        if isinstance(kept, frozenset):
            return kept
    found = frozenset(
        code for code, title in icd10cm._descriptions().items() if _MANIFESTATION in title.lower()
    )
    if entry is not None:
        cache_.store(entry, found)
    return found


# ---- build (needs simple_icd_10_cm; not at run time) -----------------------------------


def _targets(notes: Iterable[str]) -> list[Span]:
    found: list[Span] = []
    for note in notes:
        for group in _REFERENCE.findall(note):
            for token in group.split(","):
                span = _span(token)
                if span is not None and span not in found:
                    found.append(span)
    return found


def build() -> str:
    """The Excludes1 file's text, from the installed ``simple_icd_10_cm``."""
    from importlib.metadata import version

    import simple_icd_10_cm as cm  # type: ignore[import-untyped]

    rows: list[str] = []
    for item in cm.get_all_codes(True):
        notes = cm.get_excludes1(item)
        if not notes:
            continue
        targets = _targets(notes)
        if not targets:
            continue
        if "-" in item:  # a block: the range of its categories
            low, _, high = item.partition("-")
            owner: Span = (icd10cm.normalize(low), icd10cm.normalize(high))
        elif item.isdigit():  # a chapter: its first block's start to its last block's end
            blocks = cm.get_children(item)
            owner = (
                icd10cm.normalize(blocks[0].split("-")[0]),
                icd10cm.normalize(blocks[-1].split("-")[-1]),
            )
        else:
            owner = (icd10cm.normalize(item), icd10cm.normalize(item))
        rows.append(f"{_write(owner)}\t{','.join(_write(t) for t in targets)}")
    header = (
        f"# title=cleanclaim ICD-10-CM Excludes1 notes | format=1 | "
        f"release={icd10cm.release()} | notes={len(rows)} | "
        f"built_with=simple_icd_10_cm {version('simple-icd-10-cm')} | "
        f"source={icd10cm.SOURCE}"
    )
    return "\n".join([header, *sorted(rows)]) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["build"]:
        print("usage: python -m cleanclaim.dsl.codesets.icd10cm_notes build", file=sys.stderr)
        return 2
    (icd10cm.DATA_DIR / EXCLUDES1_FILE).write_text(build(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
