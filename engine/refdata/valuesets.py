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
from cleanclaim.engine.ncci import TableError
from cleanclaim.engine.refdata.store import DataStore

_KIND = {"covered": "icd10", "noncovered": "icd10", "hcpc": "codes"}


def imported_sets(
    sources: PackSources, data_root: Path | None
) -> tuple[dict[str, CodeSet], list[PolicyError]]:
    """The value sets of the pack (and its includes) that the data folder fills, and
    the errors of imported tables that cannot be read (E504)."""
    out: dict[str, CodeSet] = {}
    errors: list[PolicyError] = []
    if data_root is None:
        return out, errors
    store = DataStore(data_root)
    for pack in sources.packs:
        for name, article, group, list_name, span in pack.refdata:
            try:
                codes = store.article_codes(article, group, list_name)
            except TableError as exc:
                errors.append(
                    PolicyError(
                        "E504",
                        f"value set `{name}` (refdata): {exc}",
                        span or _manifest_span(pack.manifest_file),
                    )
                )
                continue
            if codes is not None:
                out[name] = CodeSet(_KIND[list_name], codes)
    return out, errors


def check_refdata_names(checked: Any, sources: PackSources) -> None:
    """A `refdata` entry must name a value set the pack declares (E101)."""
    for pack in sources.packs:
        for name, _article, _group, _list, span in pack.refdata:
            if name not in checked.valueset_decls:
                checked.errors.append(
                    PolicyError(
                        "E101",
                        f"`refdata` names `{name}`, which no policy file of the pack defines",
                        span or _manifest_span(pack.manifest_file),
                    )
                )


def _manifest_span(path: Path) -> Span:
    return Span(display_path(path), 1, 1, 1, 2)
