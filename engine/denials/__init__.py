"""After adjudication: X12 835 remittances read, every adjustment traced to its root cause
and owner, and measured against our own pre-submission decisions (docs/denials.md).

    from cleanclaim.engine.denials import read_remittance, denial_report
    report = denial_report([Path("era.835")], decisions=Path("decisions.ndjson"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cleanclaim.engine.denials.decisions import (
    Checked,
    decisions_from_store,
    parse_decisions,
    read_decisions,
)
from cleanclaim.engine.denials.mapping import (
    AdjustmentMap,
    Classification,
    MappingError,
    load_mapping,
)
from cleanclaim.engine.denials.report import REPORT_VERSION, build_report, classify_claim
from cleanclaim.engine.formats.x835 import read_x835, read_x835_file
from cleanclaim.engine.formats.x835_records import RemittanceFile
from cleanclaim.engine.inputs import InputFileError, ReadProblem

__all__ = [
    "REPORT_VERSION",
    "AdjustmentMap",
    "Checked",
    "Classification",
    "MappingError",
    "RemittanceFile",
    "build_report",
    "classify_claim",
    "decisions_from_store",
    "denial_report",
    "load_mapping",
    "parse_decisions",
    "read_decisions",
    "read_remittance",
    "read_remittance_text",
]


def read_remittance(path: Path) -> RemittanceFile:
    """An 835 file read whole; a file that cannot be read at all comes back with no
    remittance and its problem (never an exception), so one bad file never stops others."""
    try:
        return read_x835_file(path)
    except InputFileError as exc:
        return RemittanceFile(str(path), [], [ReadProblem("file", exc.message)])


def read_remittance_text(text: str, source: str) -> RemittanceFile:
    """`read_remittance` for text in hand (an upload)."""
    try:
        return read_x835(text, source)
    except InputFileError as exc:
        return RemittanceFile(source, [], [ReadProblem("file", exc.message)])


def denial_report(
    paths: Sequence[Path],
    *,
    decisions: Path | None = None,
    state: str | None = None,
    mapping: AdjustmentMap | None = None,
    show_ids: bool = False,
) -> dict[str, Any]:
    """Read the remittances, classify them and build the report (with what the checker
    caught when `decisions` or the history store `state` is given)."""
    files = [read_remittance(p) for p in paths]
    checked: Checked | None = None
    if decisions is not None:
        checked = read_decisions(decisions)
    elif state is not None:
        ids = [c.claim_id for f in files for c in f.claims() if c.claim_id]
        checked = decisions_from_store(state, ids)
    return build_report(files, mapping, checked, show_ids=show_ids)
