"""The mutations: the files of each kind in the pristine spool that a trial may damage, and the
damage itself (truncation at a random offset, or 1..8 random bytes flipped, from the trial's
seeded generator)."""
import os


class Mutations:
    def targets(self, kind):
        spool = os.path.join(self.pristine, "spool")

        def files(path, predicate=lambda name: True):
            found = []
            for directory, _, names in os.walk(os.path.join(spool, path)):
                found += [os.path.join(directory, n) for n in sorted(names) if predicate(n)]
            return sorted(found)

        def nonempty(paths):
            return [p for p in paths if os.path.exists(p) and os.path.getsize(p) > 0]

        if kind == "item":
            return files("queues", lambda n: True)
        if kind == "journal-live":
            return files("journal", lambda n: n.endswith(".log"))
        if kind == "journal-sealed":
            return files("journal", lambda n: n.endswith(".log.z"))
        if kind == "index":
            return nonempty([os.path.join(spool, "index", n) for n in ("status.sqlite", "status.sqlite-wal")])
        if kind == "store":
            return nonempty([os.path.join(spool, "allocator", n) for n in ("state.sqlite", "state.sqlite-wal")])
        if kind == "idempotency":
            return files("intake/keys")
        if kind == "delivered":
            return files("notifier/delivered")
        if kind == "maildir":
            return files("maildir", lambda n: True)
        if kind == "state":
            return nonempty(files("state", lambda n: not n.endswith(".lock")))
        if kind == "config":
            return [os.path.join(self.pristine, "spool.conf")]
        if kind == "import":
            return [os.path.join(self.pristine, "units2.csv")]
        raise ValueError(kind)

    @staticmethod
    def mutate(path, rng):
        """Truncates `path` at a random offset, or flips 1..8 random bytes; returns a description."""
        data = bytearray(open(path, "rb").read())
        if not data or rng.random() < 0.35:
            offset = 0 if rng.random() < 0.15 else rng.randrange(0, max(1, len(data)))
            with open(path, "r+b") as handle:
                handle.truncate(offset)
            return f"truncate {len(data)}->{offset}"
        flips = []
        for _ in range(rng.randint(1, 8)):
            offset = rng.randrange(len(data))
            value = rng.randrange(1, 256)
            data[offset] ^= value
            flips.append(f"{offset}^{value:02x}")
        with open(path, "r+b") as handle:
            handle.write(data)
        return "flip " + ",".join(flips)
