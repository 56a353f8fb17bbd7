"""Value sets that imported MCD article lists fill.

A pack names the CMS source of a value set in its manifest:

    refdata:
      tte_group1_shipped: {mcd_article: 56781, group: 1, list: covered}

and declares the set in a policy file as usual (for the medicare pack, from the shipped
partial CSV, declared `partial:`). When the data folder holds that article and group,
the engine gives the checker the imported codes for that name (`CheckEnv.valuesets`):
they stand for the declaration, and for every set built on it, and they are the whole
list, so the set is no longer partial and a code not in it is a confident finding again.
Without the import nothing changes: the declaration, partial mark and all, stands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanclaim.dsl.ast import Span
from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.pack import PackSources, display_path
from cleanclaim.dsl.valuesets import CodeSet
from cleanclaim.engine.refdata.store import DataStore

_KIND = {"covered": "icd10", "noncovered": "icd10", "hcpc": "codes"}


def imported_sets(sources: PackSources, data_root: Path | None) -> dict[str, CodeSet]:
    """The value sets of the pack (and its includes) that the data folder fills."""
    if data_root is None:
        return {}
    store = DataStore(data_root)
    out: dict[str, CodeSet] = {}
    for pack in sources.packs:
        for name, article, group, list_name, _span in pack.refdata:
            codes = store.article_codes(article, group, list_name)
            if codes is not None:
                out[name] = CodeSet(_KIND[list_name], codes)
    return out


def check_refdata_names(checked: Any, sources: PackSources) -> None:
    """A `refdata` entry must name a value set the pack declares (E101)."""
    for pack in sources.packs:
        for name, _article, _group, _list, span in pack.refdata:
            if name not in checked.valueset_decls:
                checked.errors.append(PolicyError(
                    "E101", f"`refdata` names `{name}`, which no policy file of the pack "
                    "defines", span or Span(display_path(pack.manifest_file), 1, 1, 1, 2)))
