#ifndef SPOOL_CSQLITE_SHIM_H
#define SPOOL_CSQLITE_SHIM_H
#include <sqlite3.h>

/* sqlite3_db_config is variadic, so Swift cannot call it: wrap the one option the spool sets.
   With NO_CKPT_ON_CLOSE, closing the last connection to a WAL database leaves the WAL as it is
   (no checkpoint, so no fsync, no write to the database file). Returns an SQLite result code. */
static inline int spool_sqlite_skip_checkpoint_on_close(sqlite3 *db) {
    int enabled = 0;
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &enabled);
}
#endif
