"""The ZIP of an access or portability request, built with bounded memory.

Each service's NDJSON part is read line by line and split into one spool file per category;
every spool file then becomes ``<service>/<category>.json`` and ``.csv`` inside the ZIP, written
as a stream. Memory stays flat however many records a subject has (AVG art. 15(3), 20(1):
a copy in a structured, commonly used, machine-readable format).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

TABLE_KEY = "_table"


class MalformedPart(ValueError):
    """A service's export stream is not the NDJSON of decision 0004."""


@dataclass
class ExportStats:
    records: dict[str, dict[str, int]] = field(default_factory=dict)
    """Records per service and category."""
    size_bytes: int = 0


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if value is None:
        return ""
    return value


def _spool(
    part: Path, spool_dir: Path, categories: set[str] | None
) -> dict[str, tuple[Path, list[str]]]:
    """Split one service's part into per-category files; returns path and CSV columns."""
    files: dict[str, IO[bytes]] = {}
    columns: dict[str, dict[str, None]] = {}
    try:
        with part.open("rb") as source:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                    category, table, record = item["category"], item["table"], item["record"]
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise MalformedPart(f"{part.name} line {number}: not an export record") from exc
                if not isinstance(record, dict) or not isinstance(category, str):
                    raise MalformedPart(f"{part.name} line {number}: not an export record")
                if categories is not None and category not in categories:
                    continue
                safe = "".join(ch for ch in category if ch.isalnum() or ch in "_-") or "other"
                handle = files.get(safe)
                if handle is None:
                    handle = files[safe] = (spool_dir / f"{safe}.ndjson").open("wb")
                    columns[safe] = {TABLE_KEY: None}
                row = {TABLE_KEY: table, **record}
                for key in record:
                    columns[safe].setdefault(key, None)
                handle.write(orjson.dumps(row) + b"\n")
    finally:
        for handle in files.values():
            handle.close()
    return {name: (spool_dir / f"{name}.ndjson", list(columns[name])) for name in files}


def _write_json(archive: zipfile.ZipFile, name: str, spool: Path) -> int:
    count = 0
    with archive.open(name, "w", force_zip64=True) as target, spool.open("rb") as source:
        target.write(b"[\n")
        for line in source:
            if count:
                target.write(b",\n")
            target.write(line.rstrip(b"\n"))
            count += 1
        target.write(b"\n]\n")
    return count


def _write_csv(archive: zipfile.ZipFile, name: str, spool: Path, columns: list[str]) -> None:
    with archive.open(name, "w", force_zip64=True) as raw, spool.open("rb") as source:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        for line in source:
            row = orjson.loads(line)
            writer.writerow([_csv_value(row.get(column)) for column in columns])
        text.flush()
        text.detach()


def build_zip(
    parts: Mapping[str, Path],
    destination: Path,
    *,
    documents: Callable[[ExportStats], Iterable[tuple[str, bytes]]],
    categories: set[str] | None = None,
) -> ExportStats:
    """Write the ZIP atomically to ``destination`` (synchronous: run it in a thread).

    ``documents`` gives the readable files (summary, request) once the records are counted.
    """
    stats = ExportStats()
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, tmp_name = tempfile.mkstemp(dir=destination.parent, suffix=".zip.tmp")
    os.close(descriptor)
    tmp = Path(tmp_name)
    try:
        with (
            tempfile.TemporaryDirectory(dir=destination.parent) as spool_root,
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
        ):
            for service, part in sorted(parts.items()):
                spool_dir = Path(spool_root) / service
                spool_dir.mkdir()
                counts: dict[str, int] = {}
                if part.is_file():
                    for category, (spool, columns) in sorted(
                        _spool(part, spool_dir, categories).items()
                    ):
                        counts[category] = _write_json(archive, f"{service}/{category}.json", spool)
                        _write_csv(archive, f"{service}/{category}.csv", spool, columns)
                        spool.unlink()
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
