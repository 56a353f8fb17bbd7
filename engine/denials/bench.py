"""How fast an 835 is read and classified: `python -m cleanclaim.engine.denials.bench`.

Writes a generated 005010X221A1 remittance of `--lines` service lines (default 100,000;
claims of 1-4 lines; a seeded mix of contractual, patient-responsibility, denial and
unclassified adjustments, every claim and the payment balanced) to a file, then, in one
run, times reading it from the file (`read_x835_file`) and building the report
(`build_report`: classify every adjustment, every breakdown, the worklist). Prints one JSON
object; `--out FILE` keeps the generated file.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

__all__ = ["generate_835", "main", "measure"]

_CODES = ("99213", "99214", "93000", "93306", "97110", "97140", "36415", "80053", "71046", "20610")
# (group, CARC, RARC or "", share of the allowed amount): one of these per line, plus the
# contractual write-off of the charge above the allowed amount.
_OUTCOMES = (
    ("PR", "2", "", Decimal("0.20")),
    ("PR", "1", "", Decimal("1")),
    ("CO", "50", "N115", Decimal("1")),
    ("CO", "97", "M15", Decimal("1")),
    ("CO", "16", "M53", Decimal("1")),
    ("CO", "4", "", Decimal("1")),
    ("CO", "16", "", Decimal("1")),
    ("", "", "", Decimal("0")),
)
_WEIGHTS = (40, 8, 5, 5, 3, 3, 1, 35)


def generate_835(lines: int, seed: int = 835) -> str:
    """An 835 of `lines` service lines, in one transaction set (ISA/GS/ST ... SE/GE/IEA)."""
    rng = random.Random(seed)
    body: list[str] = []
    paid_total = Decimal(0)
    left = lines
    claim = 0
    while left > 0:
        claim += 1
        count = min(left, rng.randint(1, 4))
        left -= count
        services: list[str] = []
        charge_total = paid_claim = Decimal(0)
        day = f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        for number in range(1, count + 1):
            charge = Decimal(rng.randint(40, 900))
            allowed = (charge * Decimal("0.7")).quantize(Decimal("0.01"))
            group, carc, remark, share = rng.choices(_OUTCOMES, _WEIGHTS)[0]
            adjusted = (allowed * share).quantize(Decimal("0.01")) if group else Decimal(0)
            paid = allowed - adjusted
            services += [
                f"SVC*HC:{rng.choice(_CODES)}*{charge}*{paid}**1",
                f"DTM*472*{day}",
                f"CAS*CO*45*{charge - allowed}",
            ]
            if group:
                services.append(f"CAS*{group}*{carc}*{adjusted}")
            services.append(f"REF*6R*{number}")
            if remark:
                services.append(f"LQ*HE*{remark}")
            charge_total += charge
            paid_claim += paid
        paid_total += paid_claim
        body += [
            f"CLP*B-{claim:07d}*1*{charge_total}*{paid_claim}**12*PCN{claim:07d}",
            f"NM1*QC*1*PATIENT*TEST****MI*M{claim:09d}",
            f"NM1*82*1*PROVIDER*TEST****XX*{1000000000 + claim % 50}",
            *services,
        ]
    segments = [
        "ST*835*0001",
        f"BPR*I*{paid_total}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*888888888*DA"
        "*654321*20261201",
        "TRN*1*BENCH0001*1512345678",
        "N1*PR*BENCH PAYER",
        "N1*PE*BENCH GROUP*XX*1234567893",
        "LX*1",
        *body,
    ]
    segments.append(f"SE*{len(segments) + 1}*0001")
    isa = (
        "ISA*00*          *00*          *ZZ*BENCHPAYER     *ZZ*BENCHGROUP     *261201*1200"
        "*^*00501*000000001*0*T*:"
    )
    return (
        "~\n".join(
            [
                isa,
                "GS*HP*BENCHPAYER*BENCHGROUP*20261201*1200*1*X*005010X221A1",
                *segments,
                "GE*1*1",
                "IEA*1*000000001",
            ]
        )
        + "~\n"
    )


def measure(path: Path) -> dict[str, object]:
    """Read and classify the 835 at `path`, timed (seconds, wall clock)."""
    from cleanclaim.engine.denials.mapping import load_mapping
    from cleanclaim.engine.denials.report import build_report
    from cleanclaim.engine.formats.x835 import read_x835_file

    mapping = load_mapping()
    start = time.perf_counter()
    found = read_x835_file(path)
    read = time.perf_counter() - start
    report = build_report([found], mapping)
    total = time.perf_counter() - start
    lines = found.service_count()
    return {
        "file": str(path),
        "bytes": path.stat().st_size,
        "claims": report["totals"]["claims"],
        "service_lines": lines,
        "damaged": report["totals"]["claims_damaged"],
        "denials": report["totals"]["denials"],
        "unclassified_amount": report["totals"]["unclassified_amount"],
        "read_seconds": round(read, 3),
        "classify_report_seconds": round(total - read, 3),
        "total_seconds": round(total, 3),
        "lines_per_second": round(lines / total),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cleanclaim.engine.denials.bench",
        description=__doc__.split("\n\n")[0] if __doc__ else "",
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=835)
    parser.add_argument("--out", type=Path, help="keep the generated 835 here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cleanclaim-bench-835-") as folder:
        path = args.out or Path(folder) / "bench.835"
        path.write_text(generate_835(args.lines, args.seed), encoding="utf-8")
        result = measure(path)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0 if result["damaged"] == 0 and result["service_lines"] == args.lines else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
