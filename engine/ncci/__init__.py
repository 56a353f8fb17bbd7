"""Readers and fast lookups for the CMS NCCI practitioner PTP and MUE files.

The CMS publishes both tables quarterly (reference/README.md has the layouts). The loaders
read the files exactly as CMS distributes them:

* ``load_ptp`` reads the practitioner procedure-to-procedure file ``ccipra-vNNNrN-fN.TXT``:
  tab-delimited, a copyright preamble and a one- or two-line header before the data, columns
  ``Column 1 | Column 2 | * = in existence prior to 1996 | Effective Date | Deletion Date |
  Modifier Indicator | PTP Edit Rationale``.
* ``load_mue`` reads the practitioner MUE file ``MCR_MUE_PractitionerServices_Eff_*.csv``:
  comma-separated (fields may be quoted), preamble lines before the header, columns
  ``HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication Indicator,
  MUE Rationale``.

Either loader also takes a ``.zip`` as downloaded from CMS (its ``.txt``/``.csv`` members), a
directory (its table files), or several paths (the PTP practitioner table comes in four
files). Preamble and header lines are recognised by content, not by count: a PTP line is a
data row when its first two fields are procedure codes (or its fourth field is an 8-digit
date), an MUE line when its first field is a procedure code. A data row that is malformed
raises ``TableError`` naming file and line; nothing is silently dropped.

Loading is built for the real sizes (about 2 million PTP rows): lines are split as bytes,
codes are validated and interned once per distinct value, and the tail of a PTP row
(dates, indicator, rationale) is parsed once per distinct tail and shared, so one row costs
a few dict operations and one dict slot in memory.

The modules: `sources` (where lines come from, shared helpers), `ptp`, `mue`.
"""

from cleanclaim.engine.ncci.mue import MueEdit, MueTable, load_mue
from cleanclaim.engine.ncci.ptp import NCCI_PTP_MODIFIERS, PtpHit, PtpTable, load_ptp

# engine/refdata/tables.py builds the rows of an imported PTP table itself.
from cleanclaim.engine.ncci.ptp import _PtpRow as _PtpRow
from cleanclaim.engine.ncci.sources import (
    SAMPLE_MARKER,
    TableError,
    is_procedure_code,
    sample_warning,
)

__all__ = [
    "NCCI_PTP_MODIFIERS",
    "SAMPLE_MARKER",
    "MueEdit",
    "MueTable",
    "PtpHit",
    "PtpTable",
    "TableError",
    "is_procedure_code",
    "load_mue",
    "load_ptp",
    "sample_warning",
]
