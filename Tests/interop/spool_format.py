#!/usr/bin/env python3
"""An independent implementation of the spool's on-disk format (docs/spool-format.md, version 1),
written from the document alone, used by the interop tests.

    spool_format.py enqueue SPOOL QUEUE ID PAYLOAD   enqueue one item; prints its id
    spool_format.py journal SPOOL                    prints every journal record, one per line
    spool_format.py archive FILE                     prints the events of a retention archive, one per line

Reading the journal from the start needs nothing for compaction (docs: "Compaction"): a compacted
segment is an ordinary sealed segment whose first record is the compaction marker (not an index
event), and the duplicates an interrupted compaction leaves are harmless under the version rule.
This reader keeps no position, so the rule for readers resuming inside a rewritten segment does
not concern it.
"""
import os
import struct
import sys
import time
import zlib


def bucket(item_id: str) -> str:
    """Low byte of the 32-bit FNV-1a hash of the id's UTF-8 bytes, as two hex digits."""
    h = 0x811C9DC5
    for byte in item_id.encode():
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return "%02x" % (h & 0xFF)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def enqueue(spool: str, queue: str, item_id: str, payload: bytes) -> None:
    with open(os.path.join(spool, "format")) as f:
        if f.readline().rstrip("\n") != "spool-format 1":
            raise SystemExit("unsupported spool format")
    header = (
        "spool-item 1\n"
        f"id {item_id}\n"
        f"enqueued-at {int(time.time() * 1000)}\n"
        f"length {len(payload)}\n"
        f"crc32 {zlib.crc32(payload):08x}\n"
        "\n"
    ).encode()
    ready = os.path.join(spool, "queues", queue, "ready", bucket(item_id))
    os.makedirs(ready, mode=0o770, exist_ok=True)
    staged = os.path.join(spool, "tmp", f"{item_id}.py{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    try:
        os.write(fd, header + payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(staged, os.path.join(ready, f"{item_id}.0.0"))
    fsync_dir(ready)


MAX_RECORD = 16 << 20


def valid_frame(data: bytes, position: int):
    """The payload of the valid frame at position (length 1 to 16 MiB, CRC matches), or None."""
    if position + 8 > len(data):
        return None
    length, crc = struct.unpack_from("<II", data, position)
    if length == 0 or length > MAX_RECORD or position + 8 + length > len(data):
        return None
    payload = data[position + 8 : position + 8 + length]
    return payload if zlib.crc32(payload) == crc else None


def inflate_prefix(compressed: bytes) -> bytes:
    """As much of a zlib stream as inflates (a damaged or truncated stream gives a prefix)."""
    inflater = zlib.decompressobj()
    output = b""
    for start in range(0, len(compressed), 256):
        try:
            output += inflater.decompress(compressed[start : start + 256])
        except zlib.error:
            print("damaged zlib stream", file=sys.stderr)
            break
    return output


def frames(data: bytes, position: int, name: str):
    """Every valid frame from position on, resynchronising after damage (docs: Damage and recovery)."""
    while position < len(data):
        payload = valid_frame(data, position)
        if payload is not None:
            yield payload
            position += 8 + len(payload)
            continue
        following = next((q for q in range(position + 1, len(data) - 8) if valid_frame(data, q) is not None), None)
        if following is None:
            return  # a torn tail (or damage up to the end)
        print(f"{name}: damaged bytes {position}..{following}", file=sys.stderr)
        position = following


def journal_records(spool: str):
    directory = os.path.join(spool, "journal")
    segments = {}
    for name in os.listdir(directory):
        stem = name[:20]
        if len(stem) == 20 and stem.isdigit() and name[20:] in (".log", ".log.z"):
            segments.setdefault(int(stem), set()).add(name[20:])
    for sequence in sorted(segments):
        stem = "%020d" % sequence
        if ".log.z" in segments[sequence]:
            name = stem + ".log.z"
            with open(os.path.join(directory, name), "rb") as f:
                data = inflate_prefix(f.read())
        else:
            name = stem + ".log"
            with open(os.path.join(directory, name), "rb") as f:
                data = f.read()
        newline = data.find(b"\n", 0, 64)
        if newline >= 0 and data[:newline].startswith(b"spool-journal 1 "):
            position = newline + 1
        else:
            print(f"{name}: no segment header", file=sys.stderr)
            position = 0
        yield from frames(data, position, name)


def archive_events(path: str):
    """The events of a retention archive (docs: "Compaction", archive files), checked whole."""
    lines = zlib.decompress(open(path, "rb").read()).decode().split("\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    if header != f"spool-archive 1 {len(body)}" or lines[-1] != "":
        raise SystemExit(f"{path}: not a whole version-1 archive")
    return body


def main() -> None:
    command = sys.argv[1]
    if command == "enqueue":
        enqueue(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].encode())
        print(sys.argv[4])
    elif command == "journal":
        for payload in journal_records(sys.argv[2]):
            print(payload.decode())
    elif command == "archive":
        for line in archive_events(sys.argv[2]):
            print(line)
    else:
        raise SystemExit(64)


if __name__ == "__main__":
    main()
