"""Synthetic CMS files in the CMS layouts, for benchmarks (never committed, never CMS data).

    python -m cleanclaim.engine.refdata.synthetic ptp OUT.TXT [ROWS]
    python -m cleanclaim.engine.refdata.synthetic mue OUT.csv [ROWS]

The PTP file has the practitioner file's layout (a preamble, the two-line header, seven
tab-separated columns); code pairs, dates and indicators are random, seeded, and mean
nothing.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

_PTP_HEADER = (
    "Column 1\tColumn 2\t* = in existence prior to 1996\tEffective Date\tDeletion Date\t"
    "Modifier\tPTP Edit Rationale\n"
    "\t\t\t(YYYYMMDD)\t(YYYYMMDD) *=no data\t0=not allowed 1=allowed 9=not applicable\t\n"
)
_RATIONALES = (
    "Mutually exclusive procedures",
    "Standards of medical / surgical practice",
    "Misuse of column two code with column one code",
    "CPT Manual or CMS manual coding instruction",
    "More extensive procedure",
)


def write_ptp(path: Path, rows: int, seed: int = 7) -> None:
    """A synthetic practitioner PTP file of ``rows`` edits."""
    rng = random.Random(seed)
    codes = [f"{n:05d}" for n in rng.sample(range(10000, 99999), 20000)]
    with open(path, "w", encoding="ascii", newline="\n") as out:
        out.write("SYNTHETIC PTP FILE FOR BENCHMARKS - NOT CMS DATA\n\n")
        out.write(_PTP_HEADER)
        pairs: set[tuple[str, str]] = set()
        while len(pairs) < rows:
            pairs.add((rng.choice(codes), rng.choice(codes)))
        for column1, column2 in sorted(pairs):
            year = rng.randint(1996, 2025)
            deleted = f"{year + rng.randint(1, 5)}0101" if rng.random() < 0.1 else "*"
            indicator = "9" if deleted != "*" and rng.random() < 0.5 else rng.choice("01")
            out.write(
                f"{column1}\t{column2}\t{'*' if year == 1996 else ''}\t{year}0101\t"
                f"{deleted}\t{indicator}\t{rng.choice(_RATIONALES)}\n"
            )


def write_mue(path: Path, rows: int, seed: int = 7) -> None:
    """A synthetic practitioner MUE file of ``rows`` codes."""
    rng = random.Random(seed)
    indicators = (
        "1 Line Edit",
        "2 Date of Service Edit: Policy",
        "3 Date of Service Edit: Clinical",
    )
    with open(path, "w", encoding="ascii", newline="\n") as out:
        out.write('"SYNTHETIC MUE FILE FOR BENCHMARKS - NOT CMS DATA"\n')
        out.write(
            "HCPCS/CPT Code,Practitioner Services MUE Values,"
            "MUE Adjudication Indicator,MUE Rationale\n"
        )
        for n in sorted(rng.sample(range(10000, 99999), rows)):
            out.write(f"{n:05d},{rng.randint(1, 20)},{rng.choice(indicators)},Clinical: Data\n")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("ptp", "mue"):
        print(__doc__, file=sys.stderr)
        return 2
    rows = int(argv[2]) if len(argv) > 2 else (1_000_000 if argv[0] == "ptp" else 15_000)
    (write_ptp if argv[0] == "ptp" else write_mue)(Path(argv[1]), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
