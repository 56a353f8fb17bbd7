"""The on-disk cache of parsed policy files and manifests (dsl/cache.py): a warm cache
decides exactly as no cache, a bad entry or folder is skipped, an edit misses, and a
broken file reports exactly the parser's errors."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cleanclaim.dsl import cache, parsed, parser
from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.dsl.parsed import parse_policy_file_cached
from cleanclaim.dsl.parser import parse_policy_file
from cleanclaim.engine import Engine
from tests.policy_cases_plugin import REPO, TODAY

CLAIMS = REPO / "payer_policies" / "examples" / "claims.json"
PLUGINS = ("cardiology", "dermatology", "therapy")

RULES = """version 1
valueset ecg = [93000, 93005]
rule "t/ecg"
  applies to codes ecg
  root cause coding
  let limit = 2
  when line.units > limit
  then deny CO-151 with N362
  message "too many units of {line.code}"
end
"""


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of the test's own."""
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_DIR, str(root))
    monkeypatch.delenv(cache.ENV_OFF, raising=False)
    return root


def entries(root: Path, kind: str = "parsed") -> list[Path]:
    folder = root / kind
    return sorted(p for p in folder.glob("*.pickle") if not p.name.startswith("."))


def decisions(engine: Engine) -> list[dict[str, Any]]:
    return [engine.check(claim).to_json() for claim in json.loads(CLAIMS.read_text())]


def build() -> Engine:
    return Engine(today=TODAY, plugins=PLUGINS)


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any call of the parser fail the test."""

    def refuse(text: str, file: str) -> Any:
        raise AssertionError(f"{file} was parsed although it is in the cache")

    monkeypatch.setattr(parser, "parse_policy_file", refuse)


def a_pack(root: Path, text: str = RULES) -> Path:
    pack = root / "t"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "pack.yaml").write_text("id: t\nname: test pack\n", encoding="utf-8")
    (pack / "rules.policy").write_text(text, encoding="utf-8")
    return root


# ---- a warm cache decides as no cache ----------------------------------------------------


def test_a_warm_cache_gives_the_same_programs_and_decisions_as_no_cache(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.ENV_OFF, "1")
    uncached = build()
    assert not cache_root.exists()
    monkeypatch.delenv(cache.ENV_OFF)
    filling = build()
    stored = entries(cache_root)
    assert stored and entries(cache_root, "manifests")
    no_parsing(monkeypatch)
    parser._parser.cache_clear()
    warm = build()
    assert parser._parser.cache_info().currsize == 0  # the Lark parser was never built
    assert entries(cache_root) == stored
    for engine in (filling, warm):
        assert engine.packs == uncached.packs
        assert {pack: [r.id for r in p.rules] for pack, p in engine.programs.items()} == {
            pack: [r.id for r in p.rules] for pack, p in uncached.programs.items()
        }
        assert decisions(engine) == decisions(uncached)


def test_a_warm_start_imports_no_parser(cache_root: Path) -> None:
    script = (
        "import sys, datetime\n"
        "from cleanclaim.engine import Engine\n"
        f"Engine(today=datetime.date(2026, 11, 27), plugins={PLUGINS!r})\n"
        "print('cleanclaim.dsl.parser' in sys.modules, 'yaml' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs == [["True", "True"], ["False", "False"]]  # filling the cache, then warm


SHOWN = RULES.replace(
    '"too many units of {line.code}"', '"{line.units - limit} units of {line.code} too many"'
)


def test_a_message_expression_is_cached_too(cache_root: Path) -> None:
    # Regression (medicare/pctc-bilateral.policy, 2026-12-07): the checker parsed the
    # expression in a message's braces on every start, so a pack showing one imported
    # the parser on a warm start. Its tree is cached with its position.
    packs = a_pack(cache_root.parent / "packs", SHOWN)
    script = (
        "import sys, datetime, pathlib\n"
        "from cleanclaim.engine import Engine\n"
        f"e = Engine([pathlib.Path({str(packs)!r})], today=datetime.date(2026, 11, 27),"
        " plugins=())\n"
        "print('cleanclaim.dsl.parser' in sys.modules, len(e.programs['t'].rules))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs == [["True", "1"], ["False", "1"]]
    where = ("line.units - limit", "t/rules.policy", 9, 13)
    fresh = parser.parse_expression(*where)
    assert fresh[0] is not None and not fresh[1]
    assert parsed.parse_expression_cached(*where) == fresh  # stored
    assert parsed.parse_expression_cached(*where) == fresh  # loaded, spans and all
    moved, _ = parsed.parse_expression_cached("line.units - limit", "t/rules.policy", 10, 13)
    assert moved is not None and moved.span.line == 10  # another place, another entry


def test_a_broken_message_expression_reports_the_same_error_warm(cache_root: Path) -> None:
    packs = a_pack(
        cache_root.parent / "packs", SHOWN.replace("{line.units - limit}", "{line.units -}")
    )
    renders = []
    for _ in range(2):
        with pytest.raises(PolicyCompileError) as exc:
            Engine([packs], today=TODAY, plugins=())
        renders.append(exc.value.render())
    assert "E109" in renders[0] and renders[1] == renders[0]


def test_a_cached_tree_equals_the_parsed_one_and_keeps_its_shared_nodes(cache_root: Path) -> None:
    text = RULES.replace(
        "  let limit = 2\n", "  let limit = 2\n  effective 2026-01-01\n  effective 2027-01-01\n"
    )
    fresh = parse_policy_file(text, "t/rules.policy")
    assert parse_policy_file_cached(text, "t/rules.policy") == fresh  # stored
    cached = parse_policy_file_cached(text, "t/rules.policy")  # loaded
    assert cached == fresh and cached.tree is not fresh.tree
    assert cached.tree is not None
    first, second = cached.tree.rules[0].versions
    # A clause before the first `effective` is one node shared by every version: the
    # checker keys what it learns by node identity, so sharing must survive the cache.
    assert first.lets[0] is second.lets[0]


# ---- a bad entry or folder is skipped --------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not a pickle at all",
        pickle.dumps({"a": "dict, not a tree"}),
        # An entry that would run code when loaded is refused, not run.
        b"cos\nsystem\n(S'echo owned > /dev/null'\ntR.",
    ],
)
def test_a_corrupt_entry_is_ignored_and_replaced(
    cache_root: Path, damage: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = parse_policy_file(RULES, "t/rules.policy")
    parse_policy_file_cached(RULES, "t/rules.policy")
    [entry] = entries(cache_root)
    entry.write_bytes(damage)
    calls: list[str] = []
    real = parser.parse_policy_file

    def counted(text: str, file: str) -> Any:
        calls.append(file)
        return real(text, file)

    monkeypatch.setattr(parser, "parse_policy_file", counted)
    assert parse_policy_file_cached(RULES, "t/rules.policy") == expected
    assert calls == ["t/rules.policy"]  # parsed again
    assert entry.read_bytes() != damage  # and stored again
    assert parse_policy_file_cached(RULES, "t/rules.policy") == expected
    assert calls == ["t/rules.policy"]


def test_corrupt_entries_do_not_change_the_engine(cache_root: Path) -> None:
    expected = decisions(build())
    for entry in [*entries(cache_root), *entries(cache_root, "manifests")]:
        entry.write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])  # truncated
    assert decisions(build()) == expected


def test_an_unusable_cache_folder_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder below a plain file cannot be created, even by root.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(cache.ENV_DIR, str(blocker / "cache"))
    monkeypatch.delenv(cache.ENV_OFF, raising=False)
    expected = parse_policy_file(RULES, "t/rules.policy")
    assert parse_policy_file_cached(RULES, "t/rules.policy") == expected
    engine = build()
    monkeypatch.setenv(cache.ENV_OFF, "1")
    assert decisions(engine) == decisions(build())
    assert blocker.read_text() == ""


def test_cache_off_writes_nothing(cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.ENV_OFF, "1")
    parse_policy_file_cached(RULES, "t/rules.policy")
    Engine([a_pack(cache_root.parent / "packs")], today=TODAY, plugins=())
    assert not cache_root.exists()


# ---- an edit misses ----------------------------------------------------------------------


def test_a_changed_file_misses_the_cache(cache_root: Path) -> None:
    packs = a_pack(cache_root.parent / "packs")
    engine = Engine([packs], today=TODAY, plugins=())
    assert [r.id for r in engine.programs["t"].rules] == ["t/ecg"]
    a_pack(packs, RULES.replace('"t/ecg"', '"t/ecg-units"'))
    engine = Engine([packs], today=TODAY, plugins=())
    assert [r.id for r in engine.programs["t"].rules] == ["t/ecg-units"]
    assert len(entries(cache_root)) == 2


def test_the_same_text_under_another_name_misses_the_cache(cache_root: Path) -> None:
    # Spans name their file: a tree cached for one file cannot serve another.
    one = parse_policy_file_cached(RULES, "a/rules.policy")
    two = parse_policy_file_cached(RULES, "b/rules.policy")
    assert one.tree is not None and one.tree.path == "a/rules.policy"
    assert two.tree is not None and two.tree.path == "b/rules.policy"
    assert len(entries(cache_root)) == 2


def test_a_changed_parser_misses_the_cache(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = parsed._PARSED.entry("t/rules.policy", RULES)
    monkeypatch.setattr(parsed._PARSED, "_fingerprint", b"another parser")
    assert parsed._PARSED.entry("t/rules.policy", RULES) != entry


def test_a_changed_manifest_misses_the_cache(cache_root: Path) -> None:
    packs = a_pack(cache_root.parent / "packs")
    assert Engine([packs], today=TODAY, plugins=()).programs["t"].rules
    (packs / "t" / "pack.yaml").write_text("id: t\nname: test pack\nbogus: 1\n")
    with pytest.raises(PolicyCompileError) as exc:
        Engine([packs], today=TODAY, plugins=())
    assert "unknown manifest key `bogus`" in exc.value.render()


# ---- errors are the parser's -------------------------------------------------------------


BROKEN = RULES.replace("  then deny", "  deny")


def test_a_broken_file_reports_the_same_errors_and_is_not_stored(cache_root: Path) -> None:
    expected = parse_policy_file(BROKEN, "t/rules.policy")
    assert expected.errors
    for _ in range(2):
        assert parse_policy_file_cached(BROKEN, "t/rules.policy") == expected
    assert entries(cache_root) == []


def test_a_broken_pack_renders_the_same_errors_with_and_without_the_cache(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packs = a_pack(cache_root.parent / "packs")
    (packs / "t" / "more.policy").write_text(BROKEN.replace('"t/ecg"', '"t/other"'))

    def render() -> str:
        with pytest.raises(PolicyCompileError) as exc:
            Engine([packs], today=TODAY, plugins=())
        return exc.value.render()

    monkeypatch.setenv(cache.ENV_OFF, "1")
    uncached = render()
    monkeypatch.delenv(cache.ENV_OFF)
    assert render() == uncached  # the good file stored
    assert render() == uncached  # and loaded
    assert len(entries(cache_root)) == 1


# ---- where the cache is, and how it is kept small ---------------------------------------


def test_the_cache_folder_follows_the_environment(tmp_path: Path) -> None:
    home = Path.home()
    assert cache.cache_dir({}) == home / ".cache" / "cleanclaim"
    assert cache.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "cleanclaim"
    assert cache.cache_dir({"XDG_CACHE_HOME": "relative"}) == home / ".cache" / "cleanclaim"
    assert (
        cache.cache_dir({cache.ENV_DIR: str(tmp_path / "x"), "XDG_CACHE_HOME": str(tmp_path)})
        == tmp_path / "x"
    )
    assert cache.cache_dir({cache.ENV_DIR: str(tmp_path), cache.ENV_OFF: "1"}) is None
    assert cache.cache_dir({cache.ENV_DIR: str(tmp_path), cache.ENV_OFF: "0"}) == tmp_path


def test_the_test_run_never_uses_the_home_cache() -> None:
    assert os.environ.get(cache.ENV_DIR, "").find("cleanclaim-test-cache-") >= 0


def test_pruning_keeps_the_most_recently_used_entries(tmp_path: Path) -> None:
    now = time.time()
    for i in range(10):
        entry = tmp_path / f"{i:02d}.pickle"
        entry.write_bytes(b"x" * 10)
        os.utime(entry, (now - 100 + i, now - 100 + i))
    stale = tmp_path / ".tmp-crashed.pickle"
    stale.write_bytes(b"")
    os.utime(stale, (now - 2 * 3600, now - 2 * 3600))
    fresh = tmp_path / ".tmp-writing.pickle"
    fresh.write_bytes(b"")
    cache.prune(tmp_path, max_entries=8)
    assert kept(tmp_path) == [f"{i:02d}.pickle" for i in range(4, 10)]
    assert not stale.exists() and fresh.exists()
    cache.prune(tmp_path, max_bytes=40)  # 6 entries of 10 bytes: down to 30 bytes
    assert kept(tmp_path) == [f"{i:02d}.pickle" for i in range(7, 10)]


def kept(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.pickle") if not p.name.startswith("."))
