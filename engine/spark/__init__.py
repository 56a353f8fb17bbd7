"""Checking claims on Apache Spark (issue 16.2; docs/scale.md).

```python
from pyspark.sql import SparkSession
from cleanclaim import spark as cc

session = SparkSession.builder.getOrCreate()
claims = cc.read_ndjson(session, ["claims.ndjson"])   # or cc.read_parquet / cc.claims_of
decisions = cc.check(claims, state="postgresql://...")
cc.write_decisions(decisions, "out/", "ndjson")      # or "parquet"
```

**What Spark does, what the engine does.** Spark moves claims; every decision is the
engine's own (`_executor`: `HistoryBatch`, `batch.check_item`, `ndjson_bytes`), so a
claim gets the bytes `cleanclaim check --format ndjson` writes for it. The job:

1. *read*: NDJSON lines as bytes, numbered as `cleanclaim check` numbers them (position:
   the claim's 0-based place in the input, blank lines skipped; origin: file and line),
   from Spark's own text source, two passes (count each split's lines, then number them);
2. *key* (a map): each claim decoded as phase 1 of a history run decodes it, giving its
   group - payer and member id, since claim history is kept per member -, its id key
   (payer, claim id) and, for a replacement or void, the id key of the claim it names;
3. *screen* (two small shuffles): a claim id seen earlier in the input rejects the later
   claim (`engine/duplicate-claim-id`, as in a single run); a replacement or void naming
   a claim of another member in the input joins that member's group (collected on the
   driver, merged there: such claims are rare and are refused the same way as in one run);
4. *check* (one shuffle by group, sorted by group then position within a partition):
   each partition checks whole groups at a time as one history run of the engine's own,
   in memory (claims count against the other claims of the member in the input), or
   against the store at `state` as part of the driver's run - the driver takes the run
   lock and begins and ends the run, so a Spark job is one run of the store, exactly as
   one `cleanclaim check --state` is. No two partitions have a member in common, so the
   decisions are those of one process checking the whole input, byte for byte.
5. *out*: one row per input claim (`DECISION_SCHEMA`: the findings as an array of
   structs, the decision as the NDJSON text), or files (`write_decisions`).

The compiled packs are built once per Python worker process (`_executor.engine_for`).
A damaged claim (not JSON, not a claim, invalid fields) is the engine's reject; a claim
the engine fails on is its `engine/internal-error` reject; nothing stops the others.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Sequence
from functools import partial, reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanclaim.spark import _executor

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cleanclaim.engine.engine import EngineRecipe

__all__ = [
    "CLAIM_COLUMNS",
    "check",
    "claims_of",
    "decision_schema",
    "exit_code",
    "read_ndjson",
    "read_parquet",
    "session",
    "write_decisions",
]

# The claims DataFrame `check` takes: position (0-based place in the input), file and
# line (where an NDJSON line was read; no file for claims given as values), text (the
# claim's JSON, bytes as read).
CLAIM_COLUMNS = ("position", "file", "line", "text")


def _types() -> Any:
    from pyspark.sql import types

    return types


def claim_schema() -> Any:
    t = _types()
    return t.StructType(
        [
            t.StructField("position", t.LongType(), False),
            t.StructField("file", t.StringType(), True),
            t.StructField("line", t.LongType(), True),
            t.StructField("text", t.BinaryType(), False),
        ]
    )


def finding_schema() -> Any:
    """A finding (decision format v1) as a struct."""
    t = _types()
    return t.StructType(
        [
            t.StructField("rule", t.StringType(), False),
            t.StructField("kind", t.StringType(), False),
            t.StructField("severity", t.StringType(), False),
            t.StructField("line", t.LongType(), True),
            t.StructField("group", t.StringType(), False),
            t.StructField("carc", t.StringType(), False),
            t.StructField("rarc", t.ArrayType(t.StringType(), False), False),
            t.StructField("root_cause", t.StringType(), False),
            t.StructField("owner", t.StringType(), False),
            t.StructField("message", t.StringType(), False),
            t.StructField("reference", t.StringType(), True),
            t.StructField(
                "source",
                t.StructType(
                    [
                        t.StructField("file", t.StringType(), True),
                        t.StructField("line", t.LongType(), True),
                    ]
                ),
                True,
            ),
        ]
    )


def decision_schema() -> Any:
    """The decisions DataFrame: one row per input claim. `decision` is the decision's
    NDJSON text (what `cleanclaim check --format ndjson` writes for it, without the line
    break); `failed`: the engine could not check the claim (`engine/internal-error`)."""
    t = _types()
    return t.StructType(
        [
            t.StructField("position", t.LongType(), False),
            t.StructField("claim_id", t.StringType(), True),
            t.StructField("status", t.StringType(), False),
            t.StructField("findings", t.ArrayType(finding_schema(), False), False),
            t.StructField("decision", t.StringType(), False),
            t.StructField("failed", t.BooleanType(), False),
        ]
    )


def _decided_schema() -> Any:
    t = _types()
    return t.StructType([*decision_schema().fields, t.StructField("id_key", t.StringType(), True)])


def _keyed_schema() -> Any:
    t = _types()
    return t.StructType(
        [
            *claim_schema().fields,
            t.StructField("group", t.StringType(), False),
            t.StructField("id_key", t.StringType(), True),
            t.StructField("target", t.StringType(), True),
        ]
    )


def session(
    master: str | None = None, partitions: int | None = None, app_name: str = "cleanclaim"
) -> SparkSession:
    """A SparkSession: `master` (e.g. `local[2]`; None: what spark-submit or the Spark
    configuration says, else `local[*]`), `spark.sql.shuffle.partitions` = `partitions`.
    Python workers run this interpreter unless PYSPARK_PYTHON says otherwise (pyspark's
    own default, `python3`, may not have cleanclaim installed)."""
    import os
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    if partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(partitions))
    return builder.getOrCreate()


# ---- reading -----------------------------------------------------------------------------


def read_ndjson(spark: SparkSession, paths: Sequence[str | Path]) -> DataFrame:
    """The claims of NDJSON files (or folders of them, or any path Spark reads), in the
    order given, numbered as `cleanclaim check` numbers them: `file` is the path as given
    for a local file (Spark's path for the files of a folder), `line` the 1-based line,
    `position` the place among the non-blank lines of all the files; `text` the line's
    bytes as `cleanclaim check` reads them (with its line break)."""
    from pyspark.sql import functions as F

    frames = []
    for index, path in enumerate(paths):
        name = str(path)
        # "\n" only (Python's own line splitting): a lone "\r" stays inside its line.
        lines = spark.read.option("lineSep", "\n").text(name)
        shown = F.lit(name) if Path(name).is_file() else F.col("_metadata.file_path")
        frames.append(
            lines.select(
                F.lit(index).alias("arg"),
                shown.alias("file"),
                F.col("_metadata.file_path").alias("path"),
                F.col("_metadata.file_block_start").alias("start"),
                F.col("_metadata.file_size").alias("size"),
                # The bytes as read: text cast to binary is never decoded (bad UTF-8 stays).
                F.col("value").cast("binary").alias("text"),
            )
        )
    rows = reduce(lambda a, b: a.unionByName(b), frames).rdd
    blocks = sorted(rows.mapPartitions(_count_block_lines).collect())
    numbering = _numbering(blocks)
    numbered = rows.mapPartitions(partial(_number_lines, numbering))
    return spark.createDataFrame(numbered, claim_schema())


# One split of a file as the first pass counts it: (arg, path, start, size, lines,
# non-blank lines, bytes with a line break after every line).
_Block = tuple[int, str, int, int, int, int, int]


def _count_block_lines(rows: Iterable[Any]) -> Iterator[_Block]:
    counts: dict[tuple[int, str, int, int], list[int]] = {}
    for arg, _file, path, start, size, text in rows:
        count = counts.setdefault((arg, path, start, size), [0, 0, 0])
        count[0] += 1
        count[1] += bool(bytes(text).strip())
        count[2] += len(text) + 1
    for (arg, path, start, size), (lines, claims, length) in counts.items():
        yield arg, path, start, size, lines, claims, length


# Per split (arg, path, start): its first line's number less one, its first claim's
# position, and the number of the file's last line when that line has no line break.
_Numbering = dict[tuple[int, str, int], tuple[int, int, int | None]]


def _numbering(blocks: list[_Block]) -> _Numbering:
    numbering: _Numbering = {}
    position = 0
    by_file: dict[tuple[int, str], list[_Block]] = {}
    for block in blocks:
        by_file.setdefault((block[0], block[1]), []).append(block)
    for (arg, path), splits in by_file.items():  # (sorted: the order given, then path)
        lines = sum(b[4] for b in splits)
        length = sum(b[6] for b in splits)
        size = splits[0][3]
        unterminated = lines if lines and length == size + 1 else None
        before = 0
        for _arg, _path, start, _size, count, claims, _length in splits:
            numbering[(arg, path, start)] = (before, position, unterminated)
            before += count
            position += claims
    return numbering


def _number_lines(
    numbering: _Numbering, rows: Iterable[Any]
) -> Iterator[tuple[int, str, int, bytes]]:
    split: tuple[int, str, int] | None = None
    number = position = 0
    last: int | None = None
    for arg, file, path, start, _size, text in rows:
        if (arg, path, start) != split:  # a split's lines come together, in order
            split = (arg, path, start)
            number, position, last = numbering[split]
        number += 1
        data = bytes(text)
        if not data.strip():
            continue
        yield position, file, number, data if number == last else data + b"\n"
        position += 1


def claims_of(frame: DataFrame, column: str | None = None) -> DataFrame:
    """The claims of a DataFrame: `column` holds each claim's JSON (string or binary),
    or, when None, each row is a claim (its columns the claim's fields, written as JSON
    by Spark's `to_json`). Positions follow the DataFrame's order; `line` is the row's
    1-based place (a claim that is not JSON is named by it, as an NDJSON line is by its
    line); no file, so no origin."""
    from pyspark.sql import functions as F

    if column is not None:
        text = F.col(column).cast("binary")
    else:
        text = F.to_json(F.struct(*[F.col(c) for c in frame.columns])).cast("binary")
    values = frame.select(text.alias("text")).rdd.map(lambda row: row[0]).zipWithIndex()
    return frame.sparkSession.createDataFrame(
        values.map(lambda pair: (pair[1], None, pair[1] + 1, _bytes(pair[0]))), claim_schema()
    )


def read_parquet(
    spark: SparkSession, paths: Sequence[str | Path], column: str | None = None
) -> DataFrame:
    """The claims of a Parquet dataset (`claims_of`: a JSON column, or claim-shaped
    columns when `column` is None and the dataset has no `claim` column)."""
    frame = spark.read.parquet(*[str(p) for p in paths])
    if column is None and "claim" in frame.columns:
        column = "claim"
    return claims_of(frame, column)


def _bytes(value: Any) -> bytes:
    # A null claim is no claim: the engine rejects `null` as it rejects any non-object.
    return b"null" if value is None else bytes(value)


# ---- checking ----------------------------------------------------------------------------


def check(
    claims: DataFrame,
    recipe: EngineRecipe | None = None,
    *,
    state: str | None = None,
    partitions: int | None = None,
) -> DataFrame:
    """The decisions of `claims` (`CLAIM_COLUMNS`), one row per claim (`decision_schema`).

    recipe: the engine (default: `cleanclaim check`'s: the shipped packs, the imported CMS
        data, the configured plugins, today fixed now); it is pickled to the executors,
        and its files (policy roots, tables) must be readable there.
    state: the history store (a `postgresql://` URL on a cluster; a SQLite file only when
        every executor is on this machine): the job is one run of the store. Without it
        the claims of the input count against each other only.
    partitions: partitions of the check (default: `spark.sql.shuffle.partitions`).

    The decisions are computed here, once (the result is checkpointed on the executors,
    `localCheckpoint`): each claim is checked exactly once, and every later action on
    the result reads the same rows.
    """
    if recipe is None:
        recipe = default_recipe()
    blob = pickle.dumps(recipe)
    spark = claims.sparkSession
    # Kept (memory, then disk) while the job runs: the screening reads the keys three
    # times, and each read would decode every claim again.
    keyed = spark.createDataFrame(
        claims.select(*CLAIM_COLUMNS).rdd.mapPartitions(partial(_executor.key_rows, blob)),
        _keyed_schema(),
    ).persist()
    try:
        return _check_keyed(spark, keyed, blob, state, partitions)
    finally:
        keyed.unpersist()


def _check_keyed(
    spark: SparkSession, keyed: DataFrame, blob: bytes, state: str | None, partitions: int | None
) -> DataFrame:
    from pyspark.sql import functions as F

    from cleanclaim.engine.history import counts_history

    engine = _executor.engine_for(blob)
    history = state is not None or counts_history(engine)
    keyed = _screened(keyed) if history else keyed.withColumn("repeated", F.lit(False))
    grouped = keyed.select("group", "position", "file", "line", "text", "repeated")
    grouped = (
        grouped.repartition(partitions, "group") if partitions else grouped.repartition("group")
    )
    grouped = grouped.sortWithinPartitions("group", "position")
    if state is None:
        decided = _decided(spark, grouped, blob, None, None)
        done = decided.drop("id_key") if history else _first_ids_only(decided)
        # Computed once, here: every later action reads these rows.
        return done.localCheckpoint(eager=True)
    from cleanclaim.engine.history import open_store

    store = open_store(state)
    lock = store.run_lock()
    try:
        lock.__enter__()
        store.begin_run()
        # Computed once, here: a second computation would record the claims again.
        done = _decided(spark, grouped, blob, state, store.run).drop("id_key")
        done = done.localCheckpoint(eager=True)
        store.end_run()
        return done
    finally:
        lock.release()
        store.close()


def default_recipe() -> EngineRecipe:
    """What `cleanclaim check` builds without options, with today fixed now."""
    from cleanclaim.engine.engine import EngineRecipe

    return EngineRecipe.of(EngineRecipe().build())


def _screened(keyed: DataFrame) -> DataFrame:
    """`repeated`: a claim id seen earlier in the input; `group` merged across members a
    replacement or void links (see the module docstring, step 3)."""
    from pyspark.sql import functions as F

    firsts = (
        keyed.where(F.col("id_key").isNotNull())
        .groupBy("id_key")
        .agg(F.min("position").alias("first"))
    )
    keyed = (
        keyed.join(firsts, "id_key", "left")
        .withColumn("repeated", F.coalesce(F.col("position") != F.col("first"), F.lit(False)))
        .drop("first")
    )
    kept = keyed.where(~F.col("repeated"))
    named = kept.where(F.col("target").isNotNull()).select(
        F.col("group").alias("from_group"), F.col("target").alias("key")
    )
    owners = kept.where(F.col("id_key").isNotNull()).select(
        F.col("id_key").alias("key"), F.col("group").alias("to_group")
    )
    links = (
        named.join(owners, "key")
        .where(F.col("from_group") != F.col("to_group"))
        .select("from_group", "to_group")
        .distinct()
        .collect()
    )
    if not links:
        return keyed
    roots = _merged([(str(a), str(b)) for a, b in links])
    spark = keyed.sparkSession
    mapping = spark.createDataFrame(sorted(roots.items()), "group string, root string")
    return (
        keyed.join(F.broadcast(mapping), "group", "left")
        .withColumn("group", F.coalesce(F.col("root"), F.col("group")))
        .drop("root")
    )


def _merged(links: list[tuple[str, str]]) -> dict[str, str]:
    """Each linked group's root: the least group of its connected component."""
    parent: dict[str, str] = {}

    def root(group: str) -> str:
        parent.setdefault(group, group)
        while parent[group] != group:
            parent[group] = parent[parent[group]]
            group = parent[group]
        return group

    for a, b in links:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {group: root(group) for group in list(parent)}


def _decided(
    spark: SparkSession, grouped: DataFrame, blob: bytes, state: str | None, run: str | None
) -> DataFrame:
    checked = grouped.rdd.mapPartitions(partial(_executor.check_partition, blob, state, run))
    return spark.createDataFrame(checked, _decided_schema())


def _first_ids_only(decided: DataFrame) -> DataFrame:
    """A run without history (no pack counts history, no store): a claim id that came
    earlier rejects the later claim, as `cleanclaim check` screens its decisions."""
    from pyspark.sql import functions as F

    firsts = (
        decided.where(F.col("id_key").isNotNull())
        .groupBy("id_key")
        .agg(F.min("position").alias("first"))
    )
    marked = decided.join(firsts, "id_key", "left")
    later = F.col("first").isNotNull() & (F.col("position") != F.col("first"))
    columns = [f.name for f in _decided_schema().fields]
    keep = marked.where(~later).select(*columns)
    refused = decided.sparkSession.createDataFrame(
        marked.where(later).select(*columns).rdd.map(_executor.repeated_id), _decided_schema()
    )
    return keep.unionByName(refused).drop("id_key")


# ---- out ---------------------------------------------------------------------------------


def write_decisions(decisions: DataFrame, path: str | Path, fmt: str = "ndjson") -> None:
    """Write the decisions to the folder `path`: `ndjson` (part files in input order:
    concatenated, the bytes `cleanclaim check --format ndjson` writes) or `parquet`."""
    if fmt == "ndjson":
        decisions.orderBy("position").select("decision").write.text(str(path))
    elif fmt == "parquet":
        decisions.write.parquet(str(path))
    else:
        raise ValueError(f"unknown format {fmt!r}: ndjson or parquet")


def exit_code(decisions: DataFrame) -> int:
    """`cleanclaim check`'s exit code for these decisions: 3 the engine failed on a
    claim, 1 a claim denied or rejected, else 0."""
    from pyspark.sql import functions as F

    row = decisions.agg(
        F.max(F.col("failed").cast("int")).alias("failed"),
        F.max(F.col("status").isin("deny", "reject").cast("int")).alias("bad"),
    ).first()
    if row is None or row["failed"] is None:
        return 0
    return 3 if row["failed"] else 1 if row["bad"] else 0
