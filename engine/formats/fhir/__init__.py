"""FHIR R4 reader: `Claim` resources (alone or in a `Bundle`) to claim format v1.

`read_fhir(text, source, payer_map)` yields one `RawClaim` per `Claim` in the input, in
input order. JSON and XML encodings are read; every resource the mapping touches is
validated with the FHIR R4B models of `fhir.resources` (`fhir.resources.R4B`), never
with the package's default R5 models, which accept some invalid R4.

Errors follow `cleanclaim.engine.inputs`: a Claim that cannot be read, or that cannot be
checked by professional-claim policy as it is coded (procedures in SNOMED CT or CVX,
diagnoses in SNOMED CT or ICD-9, a prior-authorization request instead of a claim for
payment, ...), becomes a `RawClaim` whose `problems` name the FHIR path, e.g.
`Claim.item[0].productOrService`. Only a file that holds no Claim at all, is not JSON or
XML, or holds a resource other than Claim/Bundle raises `InputFileError`.

`fhir.resources` (and pydantic behind it) costs a few hundred milliseconds to import: it is
imported on first use, inside `read_fhir`, never at module import. This module logs
nothing, and its messages never quote patient names, identifiers or birth dates.
"""

from __future__ import annotations

from cleanclaim.engine.formats.fhir.reader import read_fhir

__all__ = ["read_fhir"]
