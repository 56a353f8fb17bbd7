"""CMS reference data imported by the user once, read by every later run.

A billing office downloads the CMS files (NCCI PTP and MUE, the Medicare Coverage
Database article lists, the MPFS relative value file, the Order and Referring file) and
runs ``cleanclaim data import KIND FILE...``; the rows go into a local, versioned data folder
(``DataStore``) that ``check``, ``serve`` and ``test`` read by default. docs/data.md has
the whole story; the modules:

* ``store``     the data folder: atomic, idempotent imports, the catalog of versions.
* ``tables``    the NCCI tables read back from the store (same interface as engine/ncci.py).
* ``mcd``       the MCD download's ``article_x_*`` CSVs.
* ``mpfs``      the MPFS PPRRVU file and the fee schedule read per code and date.
* ``ordering``  the CMS Order and Referring file (who may order/refer, per NPI).
* ``valuesets`` value sets of a pack filled from imported MCD articles.
* ``cli``       the ``cleanclaim data`` sub-commands.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from cleanclaim.engine.refdata.store import (
    DATA_ENV,
    KINDS,
    DataStore,
    ImportRecord,
    default_data_dir,
)

__all__ = [
    "DATA_ENV",
    "KINDS",
    "DataStore",
    "ImportRecord",
    "default_data_dir",
    "fee_schedule",
    "load_article_codes",
]


def load_article_codes(
    article: int | str,
    group: int,
    kind: str = "covered",
    on_date: date | None = None,
    data_dir: Path | None = None,
) -> frozenset[str] | None:
    """The codes of an imported MCD article group list (`DataStore.article_codes`) in
    the default (or given) data folder; None when it is not imported."""
    return DataStore(data_dir).article_codes(article, group, kind, on_date)


def fee_schedule(
    code: str, on_date: date, modifier: str | None = None, data_dir: Path | None = None
) -> dict[str, Any] | None:
    """The imported MPFS row of a code on a date (`DataStore.fee_schedule`)."""
    return DataStore(data_dir).fee_schedule(code, on_date, modifier)
