import GRDB

extension AllocatorStore {
    /// Schema v4 (issue 11): the waiting list, the rate history and the price a rental was
    /// agreed at. One transaction with its row in `grdb_migrations`, as v2 and v3: a crash
    /// leaves the store at v3 (migrated again at the next opening) or at v4, never between.
    ///
    /// - `waitlist`: one row per waitlisted request, served oldest first (`seq`, never reused)
    ///   per size and site; `site` NULL means any site. A row lives exactly as long as its
    ///   rental's state is `waitlisted` (added and removed in the transaction that changes it).
    /// - `rate`: every monthly rate ever set (minor units of `currency`), newest `seq` in force;
    ///   `site` '' is the rate for every site without its own.
    /// - `rental.currency`, `rental.amount_minor`: the total agreed for the current period, NULL
    ///   when unpriced; the status document holds the lines.
    /// - Triggers `rental_no_overlap_insert` and `rental_no_overlap_update`: SQLite itself refuses
    ///   (aborting the transaction) an assigned rental that overlaps another assigned rental of
    ///   the same unit, however it was reached (allocate, promotion, extension, a bug). The
    ///   decisions check first; this is the last line. Cost: one seek in `rental_span` per write.
    static func registerV4(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-waitlist-prices") { db in
            try db.execute(sql: """
                CREATE TABLE waitlist (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    request_id TEXT NOT NULL UNIQUE REFERENCES rental(request_id),
                    size TEXT NOT NULL,
                    site TEXT,
                    start_day INTEGER NOT NULL,
                    end_day INTEGER NOT NULL,
                    since INTEGER NOT NULL
                );
                CREATE INDEX waitlist_fcfs ON waitlist(size, seq);
                CREATE INDEX waitlist_start ON waitlist(start_day);
                CREATE TABLE rate (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    size TEXT NOT NULL,
                    site TEXT NOT NULL DEFAULT '',
                    monthly_minor INTEGER NOT NULL CHECK (monthly_minor >= 0),
                    currency TEXT NOT NULL,
                    set_at INTEGER NOT NULL,
                    set_by TEXT NOT NULL
                );
                CREATE INDEX rate_current ON rate(size, site, currency, seq);
                ALTER TABLE rental ADD COLUMN currency TEXT;
                ALTER TABLE rental ADD COLUMN amount_minor INTEGER;
                CREATE TRIGGER rental_no_overlap_insert BEFORE INSERT ON rental
                WHEN NEW.state = 'assigned' AND EXISTS (
                    SELECT 1 FROM rental r WHERE r.state = 'assigned' AND r.unit_id = NEW.unit_id
                      AND r.start_day < NEW.end_day AND r.end_day > NEW.start_day AND r.request_id <> NEW.request_id)
                BEGIN SELECT RAISE(ABORT, 'overlapping assignment'); END;
                CREATE TRIGGER rental_no_overlap_update BEFORE UPDATE OF state, unit_id, start_day, end_day ON rental
                WHEN NEW.state = 'assigned' AND EXISTS (
                    SELECT 1 FROM rental r WHERE r.state = 'assigned' AND r.unit_id = NEW.unit_id
                      AND r.start_day < NEW.end_day AND r.end_day > NEW.start_day AND r.request_id <> NEW.request_id)
                BEGIN SELECT RAISE(ABORT, 'overlapping assignment'); END;
                """)
        }
    }
}
