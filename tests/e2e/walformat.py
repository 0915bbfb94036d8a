"""An independent reader and writer of Parley's log format, written from
docs/wal-format.md alone (not from the C code), so the e2e tests can check
that the document, the C writer and the C reader agree."""
import struct

import crc32c
import zstandard

VERSION = 1
SEGMENT_MAGIC = b"PRLYWAL\0"
SNAPSHOT_MAGIC = b"PRLYSNP\0"
KIND_RECORDS = 1
KIND_END = 2
FLAG_ZSTD = 1


def mask(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc(data):
    return mask(crc32c.crc32c(data))


def file_header(snapshot, base_lsn, version=VERSION):
    head = (SNAPSHOT_MAGIC if snapshot else SEGMENT_MAGIC) + struct.pack(
        "<IIQI", version, 0, base_lsn, 0)
    return head + struct.pack("<I", masked_crc(head))


def encode_records(records):
    return b"".join(struct.pack("<IB3x", len(data), rtype) + data for rtype, data in records)


class FileWriter:
    """Builds one segment or snapshot file in memory."""

    def __init__(self, snapshot, base_lsn, version=VERSION):
        self.snapshot = snapshot
        self.base_lsn = base_lsn
        self.next_lsn = base_lsn
        self.count = 0
        self.data = bytearray(file_header(snapshot, base_lsn, version))
        self.stream = zstandard.ZstdCompressor(level=1).compressobj()
        self.frame_offsets = []

    def add_frame(self, records, compress=True):
        raw = encode_records(records)
        if compress:
            stored = self.stream.compress(raw) + self.stream.flush(
                zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        else:
            stored = raw
        first = 0 if self.snapshot else self.next_lsn
        rest = struct.pack("<IQIIBB6x", len(stored), first, len(records), len(raw),
                           KIND_RECORDS, FLAG_ZSTD if compress else 0)
        self.frame_offsets.append(len(self.data))
        self.data += struct.pack("<I", masked_crc(rest + stored)) + rest + stored
        self.count += len(records)
        if not self.snapshot:
            self.next_lsn += len(records)

    def end(self):
        payload = struct.pack("<QQ", self.count, self.base_lsn)
        rest = struct.pack("<IQIIBB6x", 16, 0, 0, 16, KIND_END, 0)
        self.frame_offsets.append(len(self.data))
        self.data += struct.pack("<I", masked_crc(rest + payload)) + rest + payload


class FormatError(Exception):
    pass


def read_file(data):
    """Parses a whole file strictly. Returns (magic, base_lsn, records) where
    records are (lsn or 0, type, data); raises FormatError on any damage."""
    if len(data) < 32:
        raise FormatError("short header")
    magic, version, flags, base, zero, crc = struct.unpack("<8sIIQII", data[:32])
    if crc != masked_crc(data[:28]) or magic not in (SEGMENT_MAGIC, SNAPSHOT_MAGIC):
        raise FormatError("bad file header")
    snapshot = magic == SNAPSHOT_MAGIC
    allowed_flags = 0 if snapshot else 1  # bit 0: unsynced segment
    if version != VERSION or flags & ~allowed_flags or zero:
        raise FormatError("unknown version or flags")
    stream = zstandard.ZstdDecompressor().decompressobj()
    records, lsn, off, ended = [], base, 32, False
    while off < len(data):
        if ended:
            raise FormatError("data after the end frame")
        if data[off:off + 32] == b"\0" * 32:
            if data[off:].strip(b"\0"):
                raise FormatError("zero header followed by data")
            break
        crc, stored_len, first, count, raw_len, kind, fflags = struct.unpack(
            "<IIQIIBB", data[off:off + 26])
        if data[off + 26:off + 32] != b"\0" * 6:
            raise FormatError("non-zero reserved bytes at %d" % off)
        payload = data[off + 32:off + 32 + stored_len]
        if len(payload) != stored_len or crc != masked_crc(data[off + 4:off + 32] + payload):
            raise FormatError("checksum mismatch at %d" % off)
        if kind == KIND_END:
            if not snapshot or struct.unpack("<QQ", payload) != (len(records), base):
                raise FormatError("bad end frame")
            ended = True
        else:
            raw = stream.decompress(payload) if fflags & FLAG_ZSTD else payload
            if len(raw) != raw_len:
                raise FormatError("raw length mismatch at %d" % off)
            if not snapshot and first != lsn:
                raise FormatError("lsn %d where %d was expected" % (first, lsn))
            pos = 0
            for i in range(count):
                rlen, rtype = struct.unpack("<IB", raw[pos:pos + 5])
                if rtype == 0 or raw[pos + 5:pos + 8] != b"\0\0\0":
                    raise FormatError("bad record header")
                records.append((first + i if not snapshot else 0, rtype,
                                bytes(raw[pos + 8:pos + 8 + rlen])))
                pos += 8 + rlen
            if pos != raw_len:
                raise FormatError("records do not fill the payload")
            lsn += 0 if snapshot else count
        off += 32 + stored_len
    if snapshot and not ended:
        raise FormatError("snapshot without end frame")
    return magic, base, records


def segment_name(lsn):
    return "%020d.wal" % lsn


def snapshot_name(lsn):
    return "%020d.snap" % lsn
