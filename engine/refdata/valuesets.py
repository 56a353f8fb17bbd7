"""Value sets that imported MCD article lists fill.

A pack names the CMS source of a value set in its manifest:

    refdata:
      tte_group1: {mcd_article: 56781, group: 1, list: covered}

and declares the set in a policy file as usual (for the medicare pack, from the shipped
partial CSV, declared `partial:`). When the data folder holds that article and group,
the engine replaces the set by the imported codes, which are the whole list: the set is
no longer partial, so a code not in it is a confident finding again. Without the import
nothing changes: the declaration, partial mark and all, stands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanclaim.dsl.errors import PolicyError
from cleanclaim.dsl.pack import PackSources
from cleanclaim.dsl.valuesets import CodeSet
from cleanclaim.engine.refdata.store import DataStore

_KIND = {"covered": "icd10", "noncovered": "icd10", "hcpc": "codes"}


def apply_imported_sets(checked: Any, sources: PackSources, data_root: Path | None) -> None:
    """Replace the value sets of ``checked`` (a ``CheckedPack``) that the manifests tie to
    an imported MCD list; an entry naming no value set of the pack is an error (E101)."""
    store = DataStore(data_root) if data_root is not None else None
    for pack in sources.packs:
        for name, article, group, list_name, span in pack.refdata:
            if name not in checked.valuesets:
                if name not in getattr(checked, "valueset_decls", {name: None}):
                    checked.errors.append(PolicyError(
                        "E101", f"`refdata` names `{name}`, which no policy file of the "
                        "pack defines", span or _manifest_span(pack.manifest_file)))
                continue
            if store is None:
                continue
            codes = store.article_codes(article, group, list_name)
            if codes is None:
                continue
            declared = checked.valuesets[name]
            kind = _KIND[list_name]
            if declared.kind != kind:
                checked.errors.append(PolicyError(
                    "E501", f"`refdata` fills `{name}` with {kind} codes, but the policy "
                    f"declares it as {declared.kind}", span or
                    _manifest_span(pack.manifest_file)))
                continue
            checked.valuesets[name] = CodeSet(kind, codes)


def _manifest_span(path: Path) -> Any:
    from cleanclaim.dsl.ast import Span
    from cleanclaim.dsl.pack import display_path

    return Span(display_path(path), 1, 1, 1, 2)
