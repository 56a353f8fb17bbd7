"""X12 837P 5010 (005010X222A2) reader: every claim of an interchange as claim format v1.

`read_x12(text, source, payer_map)` yields one `RawClaim` per CLM (loop 2300) of every
billing provider (HL 20), subscriber (HL 22) and patient (HL 23) loop of every 837P
transaction set (ST/SE) of every functional group (GS/GE) in the file, in file order.

Parser library: none; our own tokenizer and loop walker (this module, no dependency).
Both candidates were installed and tried on the ten LinuxForHealth samples, on damaged
copies of them and on a generated 837P of 10,000 claims / 198,927 segments (2 cores):

- pyx12 4.0.0 (BSD, 2026-05, stable since the 2000s): its map-driven parser refuses every
  sample ("Map not found ... vriic=005010X222A2": it ships only the X222A1 map). With GS08
  rewritten to A1 it drops the SV1 and HI segments of the 3 samples that use '>' while
  declaring ':' ("Segment SV1*HC>E0570>RR not found"), so their lines lose their codes.
  Excellent validator messages (line and element: "SV104 is type R, contains an invalid
  character(x)"), but 6,300 segments/s through the parser (31 s; 134,000/s through its raw
  tokenizer), and no py.typed marker (mypy --strict: import-untyped).
- x12sdk 2.2.0 (Apache-2.0, 2026-10, "Alpha", one maintainer; continues LinuxForHealth x12):
  its Pydantic models read all 10 samples (composites stay unsplit strings), but one bad
  value anywhere fails the whole transaction set with a model path, not a segment
  ("loop_2000a.0...loop_2400.1.sv1_segment.service_unit_count"); a truncated file or one
  without SE/GE yields zero claims and no error; 15,000 segments/s and 600 MB for one
  10,000-claim transaction. Its segment reader (860,000/s) gives no positions, reads a
  newline-terminated file as one segment and fails a short ISA with IndexError. Importing
  it costs 0.16-0.24 s (pydantic) and runs `load_dotenv()` (reads ./.env into os.environ).

Neither parser can give what this reader must: per-claim isolation of damage with segment
numbers, tolerance of the separator defect, and partial results from a truncated file.
What would remain of either is a tokenizer, which is a few lines of `str.split`; ours
reads 1.4-2.3 million segments/s, and the whole reader maps the 10,000 claims in 0.6-1.1 s
(180,000-310,000 segments/s, 68 MB peak), importing in about 20 ms.

Decisions (see also the tests):
- Delimiters come from the ISA: element separator after "ISA", component separator ISA16,
  segment terminator right after it. An ISA whose fixed-width padding was trimmed is
  accepted when its 16 elements are all there; fewer raises `InputFileError`.
  Later interchanges in the same file must use the same delimiters.
- Composites (CLM05, HI, SV1-01, SV1-07) split on ISA16; when an element does not contain
  ISA16 but contains '>' or ':', that character is used (several real files declare ':'
  and use '>'). This is tolerated silently.
- Segment numbers are 1-based over the whole file (ISA is 1), empty segments not counted.
- Damaged data in a claim (or in the provider/subscriber/patient loops above it) gives
  that claim's `RawClaim` the problems and the data mapped as far as it goes; the other
  claims come out normally. Missing-but-optional data (an NPI, a DMG, a taxonomy) is left
  None for the payer packs' required-data rules to judge, not reported here.
- Envelope damage that belongs to no claim (a transaction set that is not an 837P, an ST
  with no SE, a file that ends with no IEA between claims) is reported as an extra
  `RawClaim` with `data=None`, `claim_id=None` and the problem, so it reaches the
  decisions. A file that ends inside a claim yields the complete claims first, then that
  claim with its mapped data and a truncation problem. When no complete claim could be
  read at all, `InputFileError` is raised instead (not X12, ISA too short, truncated in
  the first claim, no 837P transaction).
- A dependent patient (loop 2000C) has no member id of its own in 5010 (NM1*QC carries
  none), so `member.id` is the subscriber's id (2010BA NM109) and `birth_date`/`sex` are
  the patient's. An NM109 on NM1*QC (older files) is used when present.
- `today` is the day against which a birth date is judged (a birth date after it is
  damaged); `received_date` is not in an 837 and is left out.
- Messages never contain member names, ids or dates (of birth or of service), and this
  module logs nothing.
"""

from __future__ import annotations

from cleanclaim.engine.formats.x12.syntax import Tokens
from cleanclaim.engine.formats.x12.walker import read_x12

__all__ = ["Tokens", "read_x12"]
