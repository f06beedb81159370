"""Writing an upload's entries into its staging folder: tar, zip or multipart, checked and counted.

Each unpacker reads a blocking file object (fed by the event loop through a pipe,
see service/http/uploads.py) and writes through one TreeWriter, which checks every
name, counts every entry (files and folders) and byte against the limits, and
hashes each file as it writes it, so the data version needs no second read.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Self

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from amllib.digest import TreeHasher, TreeSummary
from amllib.errors import InvalidInput, UnsafePath, quoted
from amllib.paths import safe_entry
from service.errors import TooLarge

if TYPE_CHECKING:  # a typing-only name in python-multipart
    from python_multipart.multipart import MultipartCallbacks

# Blocks small enough to stay in the CPU's cache between the copy, the hash and the write: 1 MiB
# blocks ran the tar unpacking ~3x slower than 256 KiB ones (bench/upload_throughput.py, issue 18).
BLOCK = 256 << 10
MULTIPART_FIELD = b"files"
MAX_FORM_FIELDS = 100


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_files: int

    def too_many(self) -> TooLarge:
        return TooLarge(
            f"the upload has more than {self.max_files} entries, files and folders counted (AZML_MAX_UPLOAD_FILES)"
        )

    def too_big(self, what: str = "the upload") -> TooLarge:
        return TooLarge(f"{what} is larger than {self.max_bytes} bytes (AZML_MAX_UPLOAD_BYTES)")


class FileSink:
    """One file being written into the tree: counted against the byte limit and hashed."""

    def __init__(self, writer: TreeWriter, rel: PurePosixPath, handle: IO[bytes]) -> None:
        self._writer, self._rel, self._handle = writer, rel, handle
        self._digest, self._size = hashlib.sha256(), 0

    def write(self, block: bytes) -> None:
        self._size += len(block)
        self._writer.total += len(block)
        if self._writer.total > self._writer.limits.max_bytes:
            raise self._writer.limits.too_big()
        self._digest.update(block)
        self._handle.write(block)

    def close(self) -> None:
        self._handle.close()
        self._writer.hasher.add(self._rel.as_posix(), self._size, self._digest.hexdigest())


class TreeWriter:
    """Writes checked entries under root, enforcing the limits and hashing as it goes."""

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.limits = limits
        self.hasher = TreeHasher()
        self.total = 0
        self._entries = 0
        self._folders: set[PurePosixPath] = set()

    def _count(self) -> None:
        self._entries += 1
        if self._entries > self.limits.max_files:
            raise self.limits.too_many()

    def _count_folders(self, rel: PurePosixPath) -> None:
        """Every folder the entry creates counts once, named in the archive or implied by a file's path."""
        for folder in [rel, *rel.parents][::-1]:
            if folder != PurePosixPath(".") and folder not in self._folders:
                self._folders.add(folder)
                self._count()

    def add_dir(self, name: str) -> None:
        if name.strip("./") == "":
            return
        rel = safe_entry(name)
        self._count_folders(rel)
        try:
            (self.root / rel).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidInput(f"upload entry {quoted(name)} clashes with a file of the same name") from exc

    def open_file(self, name: str) -> FileSink:
        rel = safe_entry(name)
        self._count_folders(rel.parent)
        self._count()
        target = self.root / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = target.open("xb")
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise InvalidInput(f"upload entry {quoted(name)} clashes with another entry of the same name") from exc
        return FileSink(self, rel, handle)

    def add_file(self, name: str, source: IO[bytes]) -> None:
        sink = self.open_file(name)
        try:
            while block := source.read(BLOCK):
                sink.write(block)
        finally:
            sink.close()

    def summary(self) -> TreeSummary:
        summary = self.hasher.summary()
        if summary.files == 0:
            raise InvalidInput("the upload holds no files")
        return summary


def _entry_kind(member: tarfile.TarInfo) -> str:
    if member.issym() or member.islnk():
        return "link"
    if member.isdev() or member.isfifo():
        return "device"
    return "special file"


class _EndMarkedTarInfo(tarfile.TarInfo):
    """A tar header reader that refuses an archive ending without its end-of-archive blocks.

    tarfile takes the end of the input at a member boundary as the archive's end: a body cut
    there would otherwise become a data version missing every file after the cut.
    """

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        if len(buf) == 0:
            raise tarfile.ReadError("it ends without the blocks that end a tar archive: it was cut short")
        return super().frombuf(buf, encoding, errors)


class _Prefixed:
    """A stream whose first bytes were already read (to tell its compression) and are given again."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                head, self._head = self._head, b""
                return head + self._rest.read()
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._rest.read(size)


def _read_exactly(fileobj: IO[bytes], count: int) -> bytes:
    data = b""
    while len(data) < count and (block := fileobj.read(count - len(data))):
        data += block
    return data


def _decompressed(fileobj: IO[bytes]) -> Any:
    """The tar inside a gzip, bzip2 or xz body (or the body itself): each of these checks its own end and
    checksum once read to the end, which tarfile's stream mode never does."""
    head = _read_exactly(fileobj, 6)
    stream: IO[bytes] = _Prefixed(head, fileobj)  # type: ignore[assignment]
    if head.startswith(b"\x1f\x8b"):
        return _Gunzipped(stream)
    if head.startswith(b"BZh"):
        return _Decoded(bz2.BZ2File(stream))
    if head.startswith(b"\xfd7zXZ\x00"):
        return _Decoded(lzma.LZMAFile(stream))
    return stream


class _Gunzipped:
    """gzip members decompressed by zlib itself (wbits=31), which checks each member's CRC-32 and length:
    measured faster than gzip.GzipFile here, and as fast as tarfile's own unchecked reading."""

    def __init__(self, raw: IO[bytes] | _Prefixed) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(31)
        self._pending = b""
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        size = BLOCK if size < 0 else size
        pieces: list[bytes] = []
        got = 0
        while got < size and not self._ended:
            if self._inflate.eof:  # a member ended, checked: another may follow
                rest = self._inflate.unused_data + self._pending or self._raw.read(BLOCK)
                if not rest:
                    self._ended = True
                    break
                if not rest.startswith(b"\x1f\x8b"[: len(rest)]):
                    raise tarfile.ReadError("the gzip stream has data after its end")
                self._inflate, self._pending = zlib.decompressobj(31), rest
            data = self._pending or self._raw.read(BLOCK)
            if not data:
                raise tarfile.ReadError("the gzip stream was cut short (no end-of-stream marker and checksum)")
            try:
                piece = self._inflate.decompress(data, size - got)
            except zlib.error as exc:
                raise tarfile.ReadError(f"the gzip stream is damaged: {exc}") from exc
            self._pending = self._inflate.unconsumed_tail
            pieces.append(piece)
            got += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Decoded:
    """A decompressor's output; its complaints (bz2 and gzip raise OSError for bad data) as tar read errors,
    so a damaged body is the caller's 422 while the disk's own OSErrors stay faults."""

    def __init__(self, decompressor: IO[bytes]) -> None:
        self._decompressor = decompressor

    def read(self, size: int = -1) -> bytes:
        try:
            return self._decompressor.read(size)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise tarfile.ReadError(str(exc) or type(exc).__name__) from exc


def unpack_tar(fileobj: IO[bytes], writer: TreeWriter) -> TreeSummary:
    """Unpack a tar (plain, gzip, bzip2 or xz) read once from start to end; a body that does not end as its
    format says (no end-of-archive blocks, no gzip trailer, a wrong checksum) is refused, whole."""
    try:
        source = _decompressed(fileobj)
        with tarfile.open(fileobj=source, mode="r|", bufsize=BLOCK, tarinfo=_EndMarkedTarInfo) as archive:
            for member in archive:
                if member.name.strip("./"):
                    safe_entry(member.name)
                if member.isdir():
                    writer.add_dir(member.name)
                elif member.isreg():
                    data = archive.extractfile(member)
                    if data is None:  # only for links and special files, which were refused above
                        raise UnsafePath(f"archive entry {quoted(member.name)} has no data to read")
                    writer.add_file(member.name, data)
                else:
                    raise UnsafePath(
                        f"archive entry {quoted(member.name)} is a {_entry_kind(member)}; "
                        "only files and folders are accepted"
                    )
        while source.read(BLOCK):  # the rest (padding, the compression's trailer): read, so its end is checked
            pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise InvalidInput(f"the body is not a readable tar archive: {exc}") from exc
    return writer.summary()


def unpack_zip(path: Path, writer: TreeWriter) -> TreeSummary:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"the body is not a readable zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > writer.limits.max_files:
            raise writer.limits.too_many()
        for info in infos:  # check every entry before writing any
            if info.filename.strip("./"):
                safe_entry(info.filename)
            file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip tool recorded no type
            if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
                raise UnsafePath(
                    f"archive entry {quoted(info.filename)} is a link or special file; only files are accepted"
                )
        if sum(i.file_size for i in infos) > writer.limits.max_bytes:
            raise writer.limits.too_big()
        try:
            for info in infos:
                if info.is_dir():
                    writer.add_dir(info.filename)
                else:
                    with archive.open(info) as source:
                        writer.add_file(info.filename, source)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise InvalidInput(f"the zip archive is damaged: {exc}") from exc
    return writer.summary()


def spool_and_unpack_zip(fileobj: IO[bytes], spool: Path, writer: TreeWriter) -> TreeSummary:
    """A zip is read from its end: spool it beside the staging folder (under AZML_HOME), then unpack."""
    try:
        with spool.open("wb") as handle:
            shutil.copyfileobj(fileobj, handle, BLOCK)
        return unpack_zip(spool, writer)
    finally:
        spool.unlink(missing_ok=True)


class _MultipartFiles:
    """Callbacks for python-multipart's streaming parser: each 'files' part goes straight into the tree."""

    def __init__(self, writer: TreeWriter) -> None:
        self.writer = writer
        self.files = 0
        self.parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._sink: FileSink | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_FORM_FIELDS + self.writer.limits.max_files:
            raise self.writer.limits.too_many()
        self._headers, self._sink = {}, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") != MULTIPART_FIELD:
            return  # another form field: its bytes still count against the body limit, then are dropped
        filename = options.get(b"filename")
        if not filename:
            raise InvalidInput("every 'files' part needs a filename")
        try:
            name = filename.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("a 'files' part's filename is not UTF-8") from exc
        self._sink = self.writer.open_file(name)
        self.files += 1

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sink is not None:
            self._sink.write(data[start:end])

    def on_part_end(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def unpack_multipart(fileobj: IO[bytes], boundary: bytes, writer: TreeWriter) -> TreeSummary:
    """Stream a multipart/form-data body: every 'files' part becomes a file of the upload."""
    receiver = _MultipartFiles(writer)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        while block := fileobj.read(BLOCK):
            parser.write(block)
    except ValueError as exc:  # python-multipart's own errors are ValueErrors
        raise InvalidInput(f"bad multipart body: {exc}") from exc
    finally:
        if receiver._sink is not None:
            receiver._sink.close()
    if parser.state != MultipartState.END:
        raise InvalidInput("the multipart body ended before its closing boundary")
    if receiver.files == 0:
        raise InvalidInput("multipart body has no 'files' parts")
    return writer.summary()
