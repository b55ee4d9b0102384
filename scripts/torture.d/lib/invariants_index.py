"""The `index` check: the status index equals a rebuild from the journal (`spoolctl index
rebuild` on a copy; every column of entity and entity_key compared), and every acknowledged
request is terminal in the journal."""
import os
import shutil
import sqlite3

from invariants_spool import TERMINAL


class Index:
    def check_index(self, root, copy):
        index = os.path.join(copy, "index", "status.sqlite")
        if not os.path.exists(index):
            if self.acked:
                self.violation("index", f"no status index at {index}")
            return
        before = os.path.join(root, "index-before")
        os.makedirs(before)
        for suffix in ("", "-wal"):
            if os.path.exists(index + suffix):
                shutil.copy2(index + suffix, os.path.join(before, "status.sqlite" + suffix))
        live = index_rows(os.path.join(before, "status.sqlite"))
        result = self.ctl("index", "rebuild", "--spool", copy, "--json", timeout=600)
        if result.returncode not in self.args.allow_rebuild_exit:
            self.violation("index", f"spoolctl index rebuild of a copy exited {result.returncode}: {result.stderr.strip()[:300]}")
            if result.returncode != 65:
                return
        rebuilt = index_rows(index)
        # Compared: every column of entity (id, version, state, updated_at, keys, document) and
        # every entity_key row. Not compared: the table `projection` (the journal position the
        # index has consumed: bookkeeping of the catch-up, not an entity row; a rebuild records
        # the end of the journal it read) and SQLite's own tables.
        for table in ("entity", "entity_key"):
            a, b = live[table], rebuilt[table]
            only_live, only_rebuilt = a - b, b - a
            ids_live = {row[0] for row in only_live}
            ids_rebuilt = {row[0] for row in only_rebuilt}
            for request_id in sorted(ids_live | ids_rebuilt)[:20]:
                mine = sorted(row for row in only_live if row[0] == request_id)
                theirs = sorted(row for row in only_rebuilt if row[0] == request_id)
                if table == "entity" and len(mine) == 1 and len(theirs) == 1:
                    columns = ("id", "version", "state", "updated_at", "keys", "document")
                    differ = [f"{c}: {short(x)} vs {short(y)}" for c, x, y in zip(columns, mine[0], theirs[0]) if x != y]
                    self.violation("index", f"entity row of {request_id} differs from a rebuild (index vs rebuild): {'; '.join(differ)}")
                else:
                    self.violation("index", f"{table} rows of {request_id} differ from a rebuild: index {short(mine)} rebuild {short(theirs)}")
            extra = len(ids_live | ids_rebuilt) - 20
            if extra > 0:
                self.violation("index", f"{table}: {extra} more ids differ from a rebuild")
        journaled = {row[0]: row for row in rebuilt["entity"]}
        for request_id in self.acked:
            row = journaled.get(request_id)
            if row is None:
                self.violation("index", f"acknowledged request {request_id} is not in the journal (a rebuild does not know it)")
            elif row[2] not in TERMINAL:
                self.violation("index", f"acknowledged request {request_id} is {row[2]} in the journal (rebuilt index)")


def index_rows(path):
    db = sqlite3.connect(path)
    rows = {"entity": set(db.execute("SELECT id, version, state, updated_at, keys, document FROM entity")),
            "entity_key": set(db.execute("SELECT entity_id, name, value FROM entity_key"))}
    db.close()
    return rows


def short(rows):
    text = repr(rows)
    return text if len(text) < 400 else text[:400] + "…"

