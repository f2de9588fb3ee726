"""Reading customer files: bytes in, header map and numbered rows out; never the database.

Takes a path, bytes, a file object or a pandas DataFrame. Detects the encoding (UTF-8, UTF-8
with BOM, UTF-16 with BOM, cp1252/Latin-1, and files mixing UTF-8 and cp1252 lines), sniffs the
separator (``;``, ``,``, tab or ``|``), handles CRLF, quoted fields holding separators and line
breaks, blank lines and trailing separators. Rows are streamed, so a file of millions of lines
is read in constant memory.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import pandas as pd

from selfcare_ops.errors import ImportFileError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.onboarding.headers import HeaderMap, map_headers
from selfcare_ops.onboarding.reasons import Reason
from selfcare_ops.support.files import open_regular_file, too_big

#: Largest single field accepted by the parser; longer values are refused by the validator.
FIELD_SIZE_LIMIT = 16 * 1024 * 1024
SEPARATORS = (";", ",", "\t", "|")
#: Largest input file read (a 1,000,000-line export weighs about 150 MB).
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024
_SCAN_BLOCK = 1 << 20

csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))


@dataclass(slots=True)  # a million of them per big file: no per-row __dict__
class RawRow:
    """One data line: its number in the file (1 is the header), its cells by field."""

    line: int
    values: dict[str, str]
    #: a structural problem of the line (more cells than the header), or None
    problem: str | None = None
    #: something the analyst should check on this line that does not reject it (its encoding)
    note: str | None = None


@dataclass
class RowSource:
    """An opened input: what was detected, the header map, and the rows (read once)."""

    name: str
    encoding: str
    separator: str
    header: HeaderMap
    rows: Iterator[RawRow]
    warnings: list[str] = field(default_factory=list)
    sha256: str | None = None
    #: line breaks in the file minus the header: an upper bound of the rows, for progress bars
    estimated_rows: int | None = None
    handle: IO[Any] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Release the file (also done once every row has been read)."""
        if self.handle is not None:
            self.handle.close()

    def __iter__(self) -> Iterator[RawRow]:
        return self.rows

    def chunks(self, size: int) -> Iterator[list[RawRow]]:
        """The rows in lists of at most ``size``."""
        while True:
            chunk = list(itertools.islice(self.rows, size))
            if not chunk:
                return
            yield chunk


# --- decoding ----------------------------------------------------------------------------------


#: A UTF-8 lead byte followed by a continuation byte: no valid multi-byte UTF-8 without it.
_UTF8_PAIR = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
#: The five bytes cp1252 leaves undefined (decoded as Latin-1 by the fallback).
_CP1252_HOLES = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")


def _detect(head: bytes, blocks: Iterable[bytes]) -> tuple[str, str, int]:
    """('utf-8-sig' | 'utf-16' | 'utf-8' | 'cp1252' | 'fallback', sha256, line breaks).

    'fallback' means line by line: UTF-8 where valid, else cp1252. A file that is not UTF-8
    and holds no lead-plus-continuation byte pair at all cannot have a single valid non-ASCII
    UTF-8 line, so the fallback would read every line as cp1252: such a file (the usual
    French Excel export) is decoded as cp1252 in one go, unless it has cp1252's holes.
    """
    digest = hashlib.sha256()
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8")()
    breaks = 0
    single_bytes = True  # no UTF-8 pair and no cp1252 hole seen so far
    previous = b""
    for block in blocks:
        digest.update(block)
        breaks += block.count(b"\n")
        if single_bytes and (
            _UTF8_PAIR.search(previous + block[:1])
            or _UTF8_PAIR.search(block)
            or _CP1252_HOLES.search(block)
        ):
            single_bytes = False
        previous = block[-1:]
        if encoding in ("utf-8", "utf-8-sig"):
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                encoding = "fallback"
    if encoding in ("utf-8", "utf-8-sig"):
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            encoding = "fallback"
    if encoding == "fallback" and single_bytes:
        encoding = "cp1252"
    return encoding, digest.hexdigest(), breaks


def _main_encoding(binary: IO[bytes]) -> str:
    """'utf-8' or 'cp1252': the encoding of most non-ASCII lines of a mixed file (UTF-8 on ties).

    Only mixed files pay for this pass; it tells which lines are the odd ones to name.
    """
    utf8 = single = 0
    for raw in binary:
        if raw.isascii():
            continue
        try:
            raw.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            single += 1
    binary.seek(0)
    return "utf-8" if utf8 >= single else "cp1252"


class _FallbackLines:
    """Decode each line on its own: UTF-8 when valid, else cp1252 (Latin-1 for its holes).

    ``odd`` lists the lines (in reading order) whose encoding is not the file's ``main`` one:
    a cp1252 file with a pasted UTF-8 line, or a UTF-8 file with a cp1252 line.
    """

    def __init__(self, binary: Iterable[bytes], main: str = "utf-8") -> None:
        self.binary = binary
        self.main = main
        self.utf8_lines = 0
        self.cp1252_lines: list[int] = []
        self.odd: list[int] = []
        self.latin1 = False

    def __iter__(self) -> Iterator[str]:
        physical = (part for chunk in self.binary for part in chunk.splitlines(keepends=True))
        utf8_is_odd = self.main != "utf-8"
        for number, raw in enumerate(physical, start=1):
            try:
                text = raw.decode("utf-8")
                if not raw.isascii():
                    self.utf8_lines += 1
                    if utf8_is_odd:
                        self.odd.append(number)
            except UnicodeDecodeError:
                self.cp1252_lines.append(number)
                if not utf8_is_odd:
                    self.odd.append(number)
                try:
                    text = raw.decode("cp1252")
                except UnicodeDecodeError:
                    self.latin1 = True
                    text = raw.decode("latin-1")
            yield text

    @property
    def odd_encoding(self) -> str:
        return "cp1252" if self.main == "utf-8" else "UTF-8"

    def label(self) -> str:
        if self.utf8_lines and self.cp1252_lines:
            return "mixed utf-8/cp1252"
        return "latin-1" if self.latin1 else "cp1252"


def _utf16(head: bytes) -> str | None:
    """'utf-16' (a BOM), 'utf-16-le' / 'utf-16-be' (no BOM: the NUL high bytes of the Latin
    characters such files are made of fall on every other byte), or None."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    half = len(sample) // 2
    if half < 2:
        return None
    odd, even = sample[1 : 2 * half : 2].count(0), sample[0 : 2 * half : 2].count(0)
    if odd >= 0.7 * half and even <= 0.05 * half:
        return "utf-16-le"
    if even >= 0.7 * half and odd <= 0.05 * half:
        return "utf-16-be"
    return None


def _no_lone_surrogates(lines: Iterable[str], name: str) -> Iterator[str]:
    """UTF-16 lines, refusing a damaged character (an unpaired surrogate, or a file cut in
    the middle of a character) with its line."""
    numbered = enumerate(lines, start=1)
    number = 0
    while True:
        try:
            number, line = next(numbered)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                _(
                    "{name} cannot be decoded at line {line}: its UTF-16 text is cut in the "
                    "middle of a character ({problem}); export the file again from the "
                    "spreadsheet."
                ).format(name=name, line=number + 1, problem=exc.reason)
            ) from exc
        if _SURROGATE.search(line):
            raise ImportFileError(
                _(
                    "{name} cannot be decoded at line {line}: it holds a damaged UTF-16 "
                    "character (an unpaired surrogate); export the file again from the "
                    "spreadsheet."
                ).format(name=name, line=number)
            )
        yield line


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_binary(head: bytes, name: str, wide: str | None = None) -> None:
    position = head.find(b"\x00")
    if position >= 0 and not wide:
        raise ImportFileError(
            _(
                "{name} is not a text file (a NUL byte at offset {offset}): export it from the "
                "spreadsheet as CSV."
            ).format(name=name, offset=position)
        )


def _text_lines(binary: IO[bytes], name: str) -> tuple[Iterator[str], Any, str, int, IO[Any]]:
    """Lines with their endings, the detected encoding (a label or a fallback decoder), sha256,
    line breaks, and the handle to close when done."""
    head = binary.read(65536)
    wide = _utf16(head)
    _check_binary(head, name, wide)
    if not head.strip(b" \t\r\n\x00" + codecs.BOM_UTF8):
        raise ImportFileError(_empty(name))

    def blocks() -> Iterator[bytes]:
        yield head
        read = len(head)
        while block := binary.read(_SCAN_BLOCK):
            read += len(block)
            if read > MAX_FILE_BYTES:  # it grew since it was opened: never read without end
                raise ImportFileError(too_big(_("The file"), name, None, MAX_FILE_BYTES))
            if b"\x00" in block and not wide:
                raise ImportFileError(
                    _("{name} is not a text file (it holds NUL bytes).").format(name=name)
                )
            yield block

    encoding, digest, breaks = _detect(head, blocks())
    encoding = wide or encoding
    binary.seek(0)
    if encoding == "fallback":
        decoder = _FallbackLines(binary, _main_encoding(binary))
        return iter(decoder), decoder, digest, breaks, binary
    if wide:
        wrapper = io.TextIOWrapper(binary, encoding=wide, errors="surrogatepass", newline="")
        return _no_lone_surrogates(wrapper, name), wide, digest, breaks, wrapper
    wrapper = io.TextIOWrapper(binary, encoding=encoding, newline="")
    return iter(wrapper), encoding, digest, breaks, wrapper


# --- separator and records ---------------------------------------------------------------------


def sniff_separator(header_line: str) -> str:
    """The separator that occurs most often outside quotes on the header line (';' on ties)."""
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ";"


class _QuoteTracker:
    """Counts the quotes of the lines read since the last record (odd: a quote never closed)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.quotes = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.quotes += line.count('"')
            yield line


def _records(
    lines: Iterator[str], separator: str, name: str
) -> Iterator[tuple[int, list[str], str | None]]:
    tracker = _QuoteTracker(lines)
    reader = csv.reader(tracker, delimiter=separator, quotechar='"', doublequote=True)
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(
                _("{name} cannot be parsed as CSV near line {line}: {problem}.").format(
                    name=name, line=reader.line_num, problem=exc
                )
            ) from exc
        except UnicodeError as exc:
            raise ImportFileError(
                _("{name} cannot be decoded near line {line}: {problem}.").format(
                    name=name, line=reader.line_num + 1, problem=getattr(exc, "reason", exc)
                )
            ) from exc
        start, previous = previous + 1, reader.line_num
        problem = None
        if tracker.quotes % 2:
            problem = Reason(
                "bad_row",
                _(
                    "line {line} opens a quote that is never closed: lines {line} to {last} "
                    "were read as one row"
                ).format(line=start, last=previous),
            )
        tracker.quotes = 0
        if not problem and not "".join(cells).strip():
            continue  # blank line, or a line of separators only
        yield start, cells, problem


def _picker(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The cells at ``indexes``, as a tuple, whatever their number (itemgetter returns a bare
    value for one index)."""
    if not indexes:
        return lambda cells: ()
    if len(indexes) == 1:
        only = indexes[0]
        return lambda cells: (cells[only],)
    return itemgetter(*indexes)


def _rows(
    records: Iterator[tuple[int, list[str], str | None]], header: HeaderMap
) -> Iterator[RawRow]:
    """Cells to fields; short rows are fine (Excel drops trailing empties), extra values not."""
    width = len(header.headers)
    fields = list(header.fields.items())
    names = [name for _, name in fields]
    pick = _picker([index for index, _ in fields])
    needed = max((index for index, _ in fields), default=-1) + 1
    unnamed = [i for i, h in enumerate(header.headers) if not h]
    for line, cells, problem in records:
        if len(cells) >= needed:  # the usual full row: one C-level pick of every field
            values = dict(zip(names, pick(cells), strict=True))
        else:
            values = {name: cells[index] for index, name in fields if index < len(cells)}
        if problem is None and len(cells) > width and "".join(cells[width:]).strip():
            problem = Reason(
                "bad_row",
                _(
                    "line {line} has {cells} cells but the header names {columns} columns: a "
                    "separator inside a value must be quoted"
                ).format(line=line, cells=len(cells), columns=width),
            )
        elif (
            problem is None
            and unnamed
            and any(i < len(cells) and cells[i].strip() for i in unnamed)
        ):
            problem = Reason(
                "bad_row",
                _("line {line} has a value in a column without a header").format(line=line),
            )
        yield RawRow(line, values, problem)


def _open_binary(source: Any) -> tuple[IO[bytes], str]:
    if isinstance(source, str | Path):
        # A regular file only: /dev/zero, /dev/stdin or a FIFO would be read without end.
        handle, _size = open_regular_file(
            source, _("The file"), ImportFileError, limit=MAX_FILE_BYTES
        )
        return handle, str(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source)), _("the data")
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "") or _("the data"))
        data = source.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ImportFileError(too_big(_("The file"), name, None, MAX_FILE_BYTES))
        if isinstance(data, str):
            data = data.encode("utf-8")
        return io.BytesIO(data), name
    raise ImportFileError(
        _(
            "Cannot read users from a {kind}: give a path, bytes, a file or a pandas DataFrame."
        ).format(kind=type(source).__name__)
    )


def read_rows(source: Any, *, separator: str | None = None, name: str | None = None) -> RowSource:
    """Open ``source`` and recognise its header; rows are read lazily from ``.rows``.

    Raises :class:`ImportFileError` when the input cannot be read at all (empty, binary, no
    header with the name columns). Problems of single rows are left to the validator.
    """
    if isinstance(source, pd.DataFrame):
        return _frame_source(source, name or _("the DataFrame"))
    binary, shown = _open_binary(source)
    shown = name or shown
    handle: IO[Any] = binary
    try:
        lines, detected, digest, breaks, handle = _text_lines(binary, shown)
        first = ""
        pending: list[str] = []
        for line in lines:
            pending.append(line)
            if line.strip():
                first = line
                break
        if not first.strip():
            raise ImportFileError(_empty(shown))
        sep = separator or sniff_separator(first)
        records = _records(itertools.chain(pending, lines), sep, shown)
        try:
            _first, header_cells, _problem = next(records)
        except StopIteration:
            raise ImportFileError(_empty(shown)) from None
        header = map_headers(header_cells, shown)
    except BaseException:
        handle.close()
        raise
    source_rows = RowSource(
        name=shown,
        encoding=detected if isinstance(detected, str) else "cp1252",
        separator=sep,
        header=header,
        rows=_closing(_rows(records, header), handle),
        sha256=digest,
        handle=handle,
        estimated_rows=max(breaks, 1),
    )
    if isinstance(detected, _FallbackLines):
        source_rows.rows = _relabel(source_rows, source_rows.rows, detected)
    return source_rows


def _closing(rows: Iterator[RawRow], handle: IO[Any]) -> Iterator[RawRow]:
    """The rows, closing the file once they are all read (or the reader is dropped)."""
    try:
        yield from rows
    finally:
        handle.close()


def _relabel(
    source: RowSource, rows: Iterator[RawRow], decoder: _FallbackLines
) -> Iterator[RawRow]:
    """Pass rows through, noting the lines in the file's odd encoding on their row; when
    exhausted, name the encoding the lines really had and warn about the odd lines.

    A row is yielded as soon as its last line is decoded (the CSV reader never reads ahead),
    so the odd lines decoded since the previous row and not before this one are this row's.
    """
    source.encoding = decoder.label()
    seen = 0
    odd = decoder.odd
    for row in rows:
        if len(odd) > seen:
            mine = [number for number in odd[seen:] if number >= row.line]
            seen = len(odd)
            if mine:
                if mine == [row.line]:
                    note = _(
                        "encoding: this line is {odd}, unlike the rest of the file ({main}); "
                        "read as {odd}, check the accents"
                    )
                else:
                    note = ngettext(
                        "encoding: line {lines} is {odd}, unlike the rest of the file ({main}); "
                        "read as {odd}, check the accents",
                        "encoding: lines {lines} are {odd}, unlike the rest of the file "
                        "({main}); read as {odd}, check the accents",
                        len(mine),
                    )
                note = note.format(
                    lines=_shown(mine),
                    odd=decoder.odd_encoding,
                    main=_encoding_name(decoder.main),
                )
                row.note = f"{row.note} | {note}" if row.note else note
        source.encoding = decoder.label()
        yield row
    source.encoding = decoder.label()
    if decoder.utf8_lines and decoder.cp1252_lines:
        lines = decoder.odd
        source.warnings.append(
            ngettext(
                "The file mixes encodings: line {lines} was read as {odd}, the others as {main}.",
                "The file mixes encodings: lines {lines} were read as {odd}, the others as {main}.",
                len(lines),
            ).format(
                lines=_shown(lines), odd=decoder.odd_encoding, main=_encoding_name(decoder.main)
            )
        )


def _shown(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:10]))
    return _("{lines} and more").format(lines=shown) if len(lines) > 10 else shown


def _empty(name: str) -> str:
    return _("{name} is empty: there is no header line and no row.").format(name=name)


def _encoding_name(encoding: str) -> str:
    return "UTF-8" if encoding == "utf-8" else encoding


# --- DataFrame ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value)


def _frame_source(frame: pd.DataFrame, name: str) -> RowSource:
    headers = [str(column) for column in frame.columns]
    header = map_headers(headers, name)
    fields = list(header.fields.items())

    def rows() -> Iterator[RawRow]:
        for position, record in enumerate(frame.itertuples(index=False, name=None)):
            values = {field_name: _cell(record[index]) for index, field_name in fields}
            if any(value.strip() for value in values.values()):
                yield RawRow(position + 2, values)

    return RowSource(
        name=name,
        encoding="DataFrame",
        separator="",
        header=header,
        rows=rows(),
        estimated_rows=len(frame),
    )
