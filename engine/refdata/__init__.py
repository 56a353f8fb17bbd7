"""CMS reference data imported by the user once, read by every later run.

A billing office downloads the CMS files (NCCI PTP and MUE, the Medicare Coverage
Database article lists, the MPFS relative value file) and runs
``cleanclaim data import KIND FILE...``; the rows go into a local, versioned data folder
(``DataStore``) that ``check``, ``serve`` and ``test`` read by default. docs/data.md has
the whole story; the modules:

* ``store``     the data folder: atomic, idempotent imports, the catalog of versions.
* ``tables``    the NCCI tables read back from the store (same interface as engine/ncci.py).
* ``mcd``       the MCD download's ``article_x_*`` CSVs.
* ``mpfs``      the MPFS PPRRVU file and the fee schedule read per code and date.
* ``valuesets`` value sets of a pack filled from imported MCD articles.
* ``cli``       the ``cleanclaim data`` sub-commands.
"""

from __future__ import annotations

from cleanclaim.engine.refdata.store import (
    DATA_ENV,
    KINDS,
    DataStore,
    ImportRecord,
    default_data_dir,
)

__all__ = ["DATA_ENV", "KINDS", "DataStore", "ImportRecord", "default_data_dir"]
