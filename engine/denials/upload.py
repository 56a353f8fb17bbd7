"""`POST /v1/denials` of `cleanclaim serve`: a remittance upload to the report JSON.

Two bodies are accepted (docs/denials.md "HTTP"):
- the 835 itself (any content type but JSON, e.g. `application/edi-x12`): the report;
- `application/json`: `{"remittance": "<835 text>", "decisions": <decisions>,
  "show_ids": false}`, where decisions are what `cleanclaim check` wrote (NDJSON text,
  or a JSON array of decision objects): the report with what the checker caught.

A body that cannot be read is answered in the report, located, as `cleanclaim denials`
does for a file (never an HTTP error): `files[0].problems`, or `checker.problems`.
"""

from __future__ import annotations

import json
from typing import Any

from cleanclaim.engine.denials.decisions import Checked, parse_decisions
from cleanclaim.engine.denials.mapping import AdjustmentMap, load_mapping
from cleanclaim.engine.denials.report import build_report
from cleanclaim.engine.formats.x835_records import RemittanceFile
from cleanclaim.engine.inputs import ReadProblem

__all__ = ["report_from_upload"]

SOURCE = "upload"
_mapping: AdjustmentMap | None = None


def _text(body: bytes) -> tuple[str, bool]:
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace"), True


def _unread(message: str) -> RemittanceFile:
    return RemittanceFile(SOURCE, [], [ReadProblem("body", message)])


def report_from_upload(body: bytes, content_type: str) -> dict[str, Any]:
    """The report of an uploaded remittance (see the module's docstring)."""
    from cleanclaim.engine.denials import read_remittance_text
    from cleanclaim.engine.formats.x835 import read_x835
    from cleanclaim.engine.inputs import InputFileError

    global _mapping
    if _mapping is None:
        _mapping = load_mapping()
    checked: Checked | None = None
    show_ids = False
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = (
                f"body, line {exc.lineno} column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else "body"
            )
            return build_report(
                [RemittanceFile(SOURCE, [], [ReadProblem(where, f"not valid JSON: {exc}")])],
                _mapping,
            )
        if not isinstance(request, dict) or not isinstance(request.get("remittance"), str):
            return build_report(
                [_unread('a JSON body must be an object with "remittance": the 835 text')], _mapping
            )
        text, undecodable = request["remittance"], False
        decisions = request.get("decisions")
        if isinstance(decisions, list):
            checked = parse_decisions(json.dumps(decisions), "decisions")
        elif isinstance(decisions, str):
            checked = parse_decisions(decisions, "decisions")
        elif decisions is not None:
            checked = Checked("decisions", "findings")
            checked.problems.append(
                {"where": "decisions", "message": ("must be NDJSON text or an array of decisions")}
            )
        show_ids = request.get("show_ids") is True
    else:
        text, undecodable = _text(body)
    if undecodable:
        try:
            found = read_x835(text, SOURCE, undecodable=True)
        except InputFileError as exc:
            found = _unread(exc.message)
    else:
        found = read_remittance_text(text, SOURCE)
    return build_report([found], _mapping, checked, show_ids=show_ids)
