"""The ZIP of an access or portability request, built with bounded memory.

Each service's NDJSON share is split, while it streams in, into one spool per category: the
JSON records and their CSV rows, already rendered. When every service has answered, each spool
becomes ``<service>/<category>.json`` and ``.csv`` inside the ZIP by copying bytes. Memory stays
flat however many records a subject has (AVG art. 15(3), 20(1): a copy in a structured, commonly
used, machine-readable format).
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from libs.common.pii import exported_keys
from services.privacy_api.models import Base

TABLE_KEY = "_table"
INDEX = "index.json"
PII_CATEGORIES = "pii_categories.json"
"""The PII categories a part's meta lines named; absent when the service sent none."""
COPY_BYTES = 256 * 1024
COMPRESS_LEVEL = 1
"""Deflate level of the ZIP: level 6 took twice the time of level 1 on an export's JSON and CSV
(0.75 s against 0.34 s for 85 MB) for a ZIP 10 % smaller."""


class MalformedPart(ValueError):
    """A service's export stream is not the NDJSON of decision 0004."""


@dataclass
class ExportStats:
    records: dict[str, dict[str, int]] = field(default_factory=dict)
    """Records per service and file category (``shipments``, ``account``, ...)."""
    pii_categories: set[str] = field(default_factory=set)
    """The PII categories of the data found, as the services named them: what the summary
    looks up in the register (AVG art. 15(1)(a)-(c), (g))."""
    size_bytes: int = 0


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if value is None:
        return ""
    return value


def _csv_row(row: dict[str, Any], columns: Iterable[str]) -> list[Any]:
    return [_csv_value(row.get(column)) for column in columns]


@dataclass
class _Table:
    """What one table's records look like in a category, as long as its columns stay put."""

    keys: tuple[str, ...]
    prefix: bytes | None
    """``{"_table":"<name>",``: a record of this table continues it (the JSON record without
    its opening brace) when the category's columns are ``_table`` and exactly these keys, in
    order; ``None`` otherwise."""


@dataclass
class _Spool:
    """One category of one service: its JSON records (joined by ``,\\n`` as the JSON array has
    them) and their CSV rows. A CSV row is rendered with the columns known when it arrived;
    ``segments`` marks where the columns grew, so that the rows written before can be rendered
    again with the final columns (from the JSON records) when the ZIP is built."""

    name: str
    columns: dict[str, None] = field(default_factory=lambda: {TABLE_KEY: None})
    records: int = 0
    csv_bytes: int = 0
    segments: list[tuple[int, int, int]] = field(default_factory=list)
    """(first record, CSV byte offset, number of columns) of each run of rows."""
    tables: dict[str, _Table] = field(default_factory=dict)
    json_buffer: bytearray = field(default_factory=bytearray)
    csv_pending: list[bytes] = field(default_factory=list)
    csv_buffer: io.StringIO = field(default_factory=lambda: io.StringIO(newline=""))

    def __post_init__(self) -> None:
        self.writer = csv.writer(self.csv_buffer)

    def _shape(self, table: str, record: dict[str, Any]) -> _Table:
        keys = tuple(record)
        known = self.tables.get(table)
        if known is not None and known.keys == keys:
            return known
        grew = False
        for key in keys:
            if key not in self.columns:
                self.columns[key] = None
                grew = True
        if grew or not self.segments:
            self._take_csv()
            self.segments.append((self.records, self.csv_bytes, len(self.columns)))
            # The other tables' rows now have more columns than their keys.
            self.tables.clear()
        aligned = bool(keys) and list(self.columns) == [TABLE_KEY, *keys]
        prefix = orjson.dumps({TABLE_KEY: table})[:-1] + b"," if aligned else None
        shape = self.tables[table] = _Table(keys, prefix)
        return shape

    def add(self, table: str, record: dict[str, Any], line: bytes) -> None:
        shape = self._shape(table, record)
        if self.records:
            self.json_buffer += b",\n"
        # The raw line has no "[" and only the braces of its envelope and record when no value
        # is a list or an object: then csv takes the values as they are (it writes None as "").
        nested = b"[" in line or line.count(b"{") > 2
        if shape.prefix is not None:
            self.json_buffer += shape.prefix
            self.json_buffer += orjson.dumps(record)[1:]
            if nested:
                self.writer.writerow(_csv_row({TABLE_KEY: table, **record}, self.columns))
            else:
                self.writer.writerow((table, *record.values()))
        else:
            row = {TABLE_KEY: table, **record}
            self.json_buffer += orjson.dumps(row)
            if nested:
                self.writer.writerow(_csv_row(row, self.columns))
            else:
                self.writer.writerow([row.get(column) for column in self.columns])
        self.records += 1

    def _take_csv(self) -> None:
        if self.csv_buffer.tell():
            data = self.csv_buffer.getvalue().encode()
            self.csv_pending.append(data)
            self.csv_bytes += len(data)
            self.csv_buffer.seek(0)
            self.csv_buffer.truncate()

    def take(self) -> tuple[bytes, bytes]:
        """The JSON and CSV bytes rendered since the last call, for the spool files."""
        self._take_csv()
        csv_data = b"".join(self.csv_pending)
        self.csv_pending.clear()
        json_data = bytes(self.json_buffer)
        self.json_buffer.clear()
        return json_data, csv_data

    def entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": list(self.columns),
            "records": self.records,
            "csv_bytes": self.csv_bytes,
            "segments": self.segments,
        }


class PartSplitter:
    """Splits one service's NDJSON export, block by block, into per-category spools in
    ``directory``. ``feed`` renders in memory (one block's worth); ``write`` puts what was
    rendered into the files, so that a caller on an event loop can leave only the file writes
    to a thread: a thread rendering as well had held the GIL against the loop reading the
    streams (each read waiting out the switch interval).

    A meta line ``{"table", "pii_categories"}`` (``libs.common.pii.export_meta``) is no
    record: it is neither counted nor spooled; the PII categories it names are collected for
    the summary (decision 0302).

    ``categories`` limit privacy's own share to the data of these PII categories (a disclosure,
    decision 0308), by the annotations of privacy's tables; the other services apply them to
    their own tables before they answer. A record of a table privacy does not hold is left out.
    """

    def __init__(self, directory: Path, *, categories: set[str] | None = None) -> None:
        self.directory = directory
        self.categories = frozenset(categories) if categories is not None else None
        self.kept: dict[str, frozenset[str]] = {}
        """Per table, the record's keys an export limited to ``categories`` holds."""
        self.spools: dict[str, _Spool] = {}
        self.by_category: dict[str, _Spool] = {}
        self.files: dict[str, tuple[IO[bytes], IO[bytes]]] = {}
        self.records = 0
        self.received: dict[str, int] = {}
        """Records per category as the service sent them (before any selection)."""
        self.pii_categories: set[str] | None = None
        """The PII categories the meta lines named (within ``categories``); ``None`` while
        the service sent none."""
        self.lines = 0

    def feed(self, block: bytes) -> list[tuple[str, bytes, bytes]]:
        """Complete NDJSON lines; returns what to ``write``. Raises MalformedPart on a line
        that is not an export record."""
        for line in block.split(b"\n"):
            self.lines += 1
            if not line or line.isspace():
                continue
            try:
                item = orjson.loads(line)
                if "record" not in item:
                    self._meta(item)
                    continue
                category, table, record = item["category"], item["table"], item["record"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise MalformedPart(f"line {self.lines}: not an export record") from exc
            if (
                not isinstance(record, dict)
                or not isinstance(category, str)
                or not isinstance(table, str)
            ):
                raise MalformedPart(f"line {self.lines}: not an export record")
            self.records += 1
            self.received[category] = self.received.get(category, 0) + 1
            if self.categories is not None:
                kept = self._kept(table)
                if not kept:
                    continue
                record = {key: value for key, value in record.items() if key in kept}
            spool = self.by_category.get(category)
            if spool is None:
                spool = self.by_category[category] = self._spool_for(category)
            spool.add(table, record, line)
        return [(name, *spool.take()) for name, spool in self.spools.items()]

    def _meta(self, item: Any) -> None:
        named = item["pii_categories"]
        if (
            not isinstance(item["table"], str)
            or not isinstance(named, list)
            or not all(isinstance(category, str) for category in named)
        ):
            raise TypeError("not a meta line")
        found = set(named)
        if self.categories is not None:
            # Privacy's own share is limited here, not where it was written (see _kept).
            found &= self.categories
        self.pii_categories = (self.pii_categories or set()) | found

    def _kept(self, table: str) -> frozenset[str]:
        kept = self.kept.get(table)
        if kept is None:
            own = Base.metadata.tables.get(table)
            kept = frozenset() if own is None else exported_keys(own, self.categories)
            self.kept[table] = kept
        return kept

    def _spool_for(self, category: str) -> _Spool:
        safe = "".join(ch for ch in category if ch.isalnum() or ch in "_-") or "other"
        if safe not in self.spools:
            self.spools[safe] = _Spool(safe)
        return self.spools[safe]

    def write(self, rendered: list[tuple[str, bytes, bytes]]) -> None:
        """Append what ``feed`` rendered to the spool files (blocking file I/O)."""
        for name, json_data, csv_data in rendered:
            files = self.files.get(name)
            if files is None:
                files = self.files[name] = (
                    (self.directory / f"{name}.json").open("wb"),
                    (self.directory / f"{name}.csv").open("wb"),
                )
            files[0].write(json_data)
            files[1].write(csv_data)

    def finish(self) -> None:
        """Write what is left and the index, and close the files (blocking file I/O)."""
        self.write([(name, *spool.take()) for name, spool in self.spools.items()])
        self.abandon()
        index = [spool.entry() for _, spool in sorted(self.spools.items())]
        if self.pii_categories is not None:
            found = sorted(self.pii_categories)
            (self.directory / PII_CATEGORIES).write_bytes(orjson.dumps(found))
        (self.directory / INDEX).write_bytes(orjson.dumps(index))

    def abandon(self) -> None:
        for json_file, csv_file in self.files.values():
            json_file.close()
            csv_file.close()
        self.files.clear()


def split_part(part: Path, directory: Path, categories: set[str] | None) -> None:
    """An NDJSON part file split as if it had been streamed in (parts written before parts were
    split on arrival)."""
    splitter = PartSplitter(directory, categories=categories)
    try:
        with part.open("rb") as source:
            while block := source.read(COPY_BYTES):
                block += source.readline()
                splitter.write(splitter.feed(block.removesuffix(b"\n")))
        splitter.finish()
    except BaseException:
        splitter.abandon()
        raise


def _json_records(spool: Path) -> Iterator[bytes]:
    with spool.open("rb") as source:
        for line in source:
            yield line.rstrip(b"\n").removesuffix(b",")


def _copy(source: IO[bytes], target: IO[bytes], size: int) -> None:
    while size > 0:
        block = source.read(min(COPY_BYTES, size))
        if not block:
            raise MalformedPart(f"{getattr(source, 'name', 'spool')} is shorter than its index")
        target.write(block)
        size -= len(block)


def _write_json(archive: zipfile.ZipFile, name: str, spool: Path) -> None:
    with archive.open(name, "w", force_zip64=True) as target, spool.open("rb") as source:
        target.write(b"[\n")
        shutil.copyfileobj(source, target, COPY_BYTES)
        target.write(b"\n]\n")


def _write_csv(archive: zipfile.ZipFile, name: str, directory: Path, entry: dict[str, Any]) -> None:
    columns: list[str] = entry["columns"]
    segments = [*entry["segments"], (entry["records"], entry["csv_bytes"], len(columns))]
    records = _json_records(directory / f"{entry['name']}.json")
    position = 0
    with (
        archive.open(name, "w", force_zip64=True) as raw,
        (directory / f"{entry['name']}.csv").open("rb") as rows,
    ):
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        text.flush()
        for (first, offset, width), (end, end_offset, _) in itertools.pairwise(segments):
            if width == len(columns):
                rows.seek(offset)
                _copy(rows, raw, end_offset - offset)
                continue
            # Rows written before the last columns were known: rendered again with all of them.
            for _ in range(position, first):
                next(records)
            for _ in range(first, end):
                writer.writerow(_csv_row(orjson.loads(next(records)), columns))
            position = end
            text.flush()
        text.detach()


def _read_index(directory: Path) -> list[dict[str, Any]]:
    try:
        index = orjson.loads((directory / INDEX).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise MalformedPart(f"{directory.name}: no readable index") from exc
    if not isinstance(index, list):
        raise MalformedPart(f"{directory.name}: no readable index")
    return index


def _pii_categories(directory: Path, counts: Mapping[str, int]) -> set[str]:
    """The PII categories a part named; for a part of a service that names none (a release
    before meta lines), its file categories, some of which are PII categories."""
    try:
        named = orjson.loads((directory / PII_CATEGORIES).read_bytes())
    except FileNotFoundError:
        return set(counts)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise MalformedPart(f"{directory.name}: unreadable {PII_CATEGORIES}") from exc
    if not isinstance(named, list) or not all(isinstance(key, str) for key in named):
        raise MalformedPart(f"{directory.name}: unreadable {PII_CATEGORIES}")
    return set(named)


def build_zip(
    parts: Mapping[str, Path],
    destination: Path,
    *,
    documents: Callable[[ExportStats], Iterable[tuple[str, bytes]]],
    categories: set[str] | None = None,
) -> ExportStats:
    """Write the ZIP atomically to ``destination`` (synchronous: run it in a thread).

    A part is a directory of spools (see :class:`PartSplitter`; its categories were selected
    when it was split) or an NDJSON file, split here with ``categories``. ``documents`` gives
    the readable files (summary, request) once the records are counted.
    """
    stats = ExportStats()
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, tmp_name = tempfile.mkstemp(dir=destination.parent, suffix=".zip.tmp")
    os.close(descriptor)
    tmp = Path(tmp_name)
    try:
        with (
            tempfile.TemporaryDirectory(dir=destination.parent) as spool_root,
            zipfile.ZipFile(
                tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
            ) as archive,
        ):
            for service, part in sorted(parts.items()):
                directory = part
                if part.is_file():
                    directory = Path(spool_root) / service
                    directory.mkdir()
                    split_part(part, directory, categories)
                counts: dict[str, int] = {}
                if directory.is_dir():
                    for entry in _read_index(directory):
                        category = entry["name"]
                        _write_json(
                            archive, f"{service}/{category}.json", directory / f"{category}.json"
                        )
                        _write_csv(archive, f"{service}/{category}.csv", directory, entry)
                        counts[category] = entry["records"]
                    stats.pii_categories |= _pii_categories(directory, counts)
                stats.records[service] = counts
            for name, content in documents(stats):
                archive.writestr(name, content)
        tmp.replace(destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stats.size_bytes = destination.stat().st_size
    return stats


def remove_parts(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
