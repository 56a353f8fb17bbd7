"""Results of slow, pure steps (parsing a policy file, reading a manifest) kept on disk,
so that a cold `cleanclaim check` does not redo them for files that have not changed.

Each kind of result has its folder under the user's cache directory
(`$CLEANCLAIM_CACHE_DIR`, else `$XDG_CACHE_HOME/cleanclaim`, else `~/.cache/cleanclaim`),
one pickle per entry. An entry's name is a hash of what the result is computed from (a
file's name and text) and of everything else that shapes it: the source files of the
modules that compute it, the versions that matter and `CACHE_FORMAT`. An edit to a policy
file or to the language therefore misses the cache instead of serving a stale result.

The cache never makes a run fail and never changes its result: a folder that cannot be
created or written, or an entry that cannot be read or unpickled, is skipped and the
result computed. Entries are written to a temporary file and renamed into place, so
concurrent runs never see half an entry; past `MAX_ENTRIES` entries or `MAX_BYTES` a
kind's least recently used entries are removed. An entry may only hold the classes its
kind allows, so that an entry that is not ours is treated as corrupt rather than run.
`CLEANCLAIM_NO_CACHE=1` turns the cache off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import importlib.util
import io
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Bump when what is stored changes shape in a way the source hashes do not see.
CACHE_FORMAT = 1
ENV_DIR = "CLEANCLAIM_CACHE_DIR"
ENV_OFF = "CLEANCLAIM_NO_CACHE"
# Per kind: a few versions of a few hundred files. When either bound is passed, the
# least recently used entries go until both are at three quarters.
MAX_ENTRIES = 2000
MAX_BYTES = 128 * 1024 * 1024
# A process tidies a kind's folder on its first store and on every 100th after it: a
# scan per store would cost a first run more than the cache saves it.
_PRUNE_EVERY = 100
# An entry used on a later day has its time refreshed (for least-recently-used pruning)
# at most once a day, so that a hit does not write.
_TOUCH_AFTER_S = 24 * 3600
# Temporary files older than this were left by a process that died while writing.
_STALE_TEMP_S = 3600
_HERE = Path(__file__).resolve().parent

# What any entry may hold besides the classes of its kind: plain values.
PLAIN_VALUES: Mapping[str, frozenset[str] | None] = {
    "builtins": frozenset({"frozenset", "set"}),
    "datetime": frozenset({"date"}),
    "decimal": frozenset({"Decimal"}),
}


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The cache directory; None when the cache is turned off or there is no home
    directory to put it in."""
    env = os.environ if environ is None else environ
    if env.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no"):
        return None
    explicit = env.get(ENV_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative path is ignored
        return Path(xdg) / "cleanclaim"
    try:
        return Path.home() / ".cache" / "cleanclaim"
    except RuntimeError:  # no home directory can be determined
        return None


class PickleCache:
    """One kind of result on disk.

    kind: the folder's name below the cache directory.
    sources: files (globs) below `cleanclaim/dsl/` whose text shapes the result.
    salt: anything else that does, such as a library's version (read on first use).
    allowed: module -> the names of its classes an entry may hold (None: any class)."""

    def __init__(
        self,
        kind: str,
        sources: Sequence[str],
        salt: Callable[[], str],
        allowed: Mapping[str, frozenset[str] | None],
    ) -> None:
        self.kind = kind
        self.sources = tuple(sources)
        self.salt = salt
        self.allowed = {**PLAIN_VALUES, **allowed}
        self._fingerprint: bytes | None = None
        self._stores = 0

    def entry(self, *parts: str) -> Path | None:
        """Where the result computed from `parts` is kept; None when the cache is off."""
        root = cache_dir()
        if root is None:
            return None
        h = hashlib.sha256(self.fingerprint())
        for part in parts:
            data = part.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little") + data)
        return root / self.kind / f"{h.hexdigest()}.pickle"

    def fingerprint(self) -> bytes:
        """A hash of everything besides an entry's own parts that shapes its result."""
        if self._fingerprint is None:
            h = hashlib.sha256(f"cleanclaim-cache {CACHE_FORMAT} {self.kind}\0".encode())
            h.update(f"python {sys.version_info[0]}.{sys.version_info[1]}\0".encode())
            h.update(self.salt().encode() + b"\0")
            for pattern in self.sources:
                for path in sorted(_HERE.glob(pattern)) or [_HERE / pattern]:
                    h.update(path.name.encode() + b"\0")
                    try:
                        h.update(path.read_bytes())
                    except OSError:  # installed without sources: the version stands in
                        h.update(_version().encode())
                    h.update(b"\0")
            self._fingerprint = h.digest()
        return self._fingerprint

    def load(self, entry: Path) -> object | None:
        """The value kept at `entry`, or None when there is none or it cannot be used."""
        try:
            with open(entry, "rb") as f:
                data = f.read()
                mtime = os.fstat(f.fileno()).st_mtime
            value = _load_without_collecting(_Unpickler(io.BytesIO(data), self.allowed))
        except Exception:  # missing, unreadable, truncated, not ours: compute instead
            return None
        if time.time() - mtime > _TOUCH_AFTER_S:
            with contextlib.suppress(OSError):
                os.utime(entry)
        return value  # type: ignore[no-any-return]

    def store(self, entry: Path, value: object) -> None:
        """Keep `value` at `entry`, atomically; on any failure the cache stays as it was."""
        try:
            buffer = io.BytesIO()
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
            entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".pickle")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(buffer.getbuffer())
                os.replace(temp, entry)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except Exception:  # read-only or full disk, no permission, a value not picklable
            return
        self._stores += 1
        if self._stores % _PRUNE_EVERY == 1:
            prune(entry.parent)


def _load_without_collecting(unpickler: pickle.Unpickler) -> Any:
    """Unpickle with the garbage collector paused: a tree is thousands of new objects and
    no garbage, and the collections they would set off take as long as the loading."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return unpickler.load()
    finally:
        if was_enabled:
            gc.enable()


def prune(folder: Path, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
    """Remove temporary files left by a crash and, once there are more than `max_entries`
    entries or `max_bytes` in them, the least recently used entries until both are at
    three quarters of their bound."""
    try:
        with os.scandir(folder) as listing:
            found = list(listing)
    except OSError:
        return
    now = time.time()
    entries: list[tuple[float, int, str]] = []
    for item in found:
        with contextlib.suppress(OSError):  # another process may have removed it
            stat = item.stat()
            if item.name.startswith(".tmp-"):
                if now - stat.st_mtime > _STALE_TEMP_S:
                    os.unlink(item.path)
            elif item.name.endswith(".pickle"):
                entries.append((stat.st_mtime, stat.st_size, item.path))
    count, size = len(entries), sum(e[1] for e in entries)
    if count <= max_entries and size <= max_bytes:
        return
    entries.sort()
    for _mtime, entry_size, path in entries:
        if count <= max_entries * 3 // 4 and size <= max_bytes * 3 // 4:
            break
        with contextlib.suppress(OSError):
            os.unlink(path)
        count, size = count - 1, size - entry_size


def module_source(name: str) -> str:
    """The text of an installed package's `__init__.py` (where its version is written),
    read without importing it: a salt that changes when the package is upgraded."""
    try:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        return Path(origin).read_text(encoding="utf-8") if origin else f"no {name}"
    except (ImportError, OSError, ValueError):
        return f"no {name}"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("cleanclaim")
    except Exception:  # not installed as a distribution
        return "unknown"


class _Pickler(pickle.Pickler):
    """Stores a dataclass as a call of its constructor: loading it then runs the
    generated `__init__` instead of the much slower `__setstate__` of a frozen slotted
    dataclass, which halves the time to load a syntax tree."""

    def __init__(self, file: io.BytesIO, protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        # class -> its fields in constructor order; None: not stored as a constructor call
        self._layouts: dict[type, tuple[str, ...] | None] = {}

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        layout = self._layouts.get(cls, ())
        if layout == ():
            layout = self._layouts[cls] = _constructor_fields(cls)
        if layout is None:
            return NotImplemented
        return cls, tuple(getattr(obj, name) for name in layout)


def _constructor_fields(cls: type) -> tuple[str, ...] | None:
    """The fields a dataclass's constructor takes, in order, when it takes them all
    positionally; None for any other class."""
    if not dataclasses.is_dataclass(cls):
        return None
    fields = dataclasses.fields(cls)
    if any(not f.init or f.kw_only is True for f in fields):
        return None
    return tuple(f.name for f in fields)


class _Unpickler(pickle.Unpickler):
    """Loads only the classes a kind allows."""

    def __init__(self, file: io.BytesIO, allowed: Mapping[str, frozenset[str] | None]) -> None:
        super().__init__(file)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if module not in self.allowed:
            raise pickle.UnpicklingError(f"{module}.{name} may not be in a cache entry")
        names = self.allowed[module]
        if names is not None and name not in names:
            raise pickle.UnpicklingError(f"{module}.{name} may not be in a cache entry")
        found = super().find_class(module, name)
        if not isinstance(found, type):
            raise pickle.UnpicklingError(f"{module}.{name} is not a class")
        return found
