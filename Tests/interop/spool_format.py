#!/usr/bin/env python3
"""An independent implementation of the spool's on-disk format (docs/spool-format.md, version 1),
written from the document alone, used by the interop tests.

    spool_format.py enqueue SPOOL QUEUE ID PAYLOAD   enqueue one item; prints its id
    spool_format.py journal SPOOL                    prints every journal record, one per line
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
            with open(os.path.join(directory, stem + ".log.z"), "rb") as f:
                data = zlib.decompress(f.read())
        else:
            with open(os.path.join(directory, stem + ".log"), "rb") as f:
                data = f.read()
        newline = data.index(b"\n")
        if not data[:newline].startswith(b"spool-journal 1 "):
            raise SystemExit("bad segment header")
        position = newline + 1
        while position + 8 <= len(data):
            length, crc = struct.unpack_from("<II", data, position)
            payload = data[position + 8 : position + 8 + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break  # torn tail of the live segment
            yield payload
            position += 8 + length


def main() -> None:
    command = sys.argv[1]
    if command == "enqueue":
        enqueue(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].encode())
        print(sys.argv[4])
    elif command == "journal":
        for payload in journal_records(sys.argv[2]):
            print(payload.decode())
    else:
        raise SystemExit(64)


if __name__ == "__main__":
    main()
