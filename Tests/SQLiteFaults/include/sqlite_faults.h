#ifndef SQLITE_FAULTS_H
#define SQLITE_FAULTS_H

/* A SQLite VFS for tests: wraps the default VFS and, for files whose path contains a marker,
 * counts I/O calls and makes a chosen one fail, as an I/O error or a full disk. This is the
 * fault-injection seam for the status index: SQLite does its own file I/O. */

enum sqlite_fault_call {
    SQLITE_FAULT_OPEN, SQLITE_FAULT_READ, SQLITE_FAULT_WRITE, SQLITE_FAULT_TRUNCATE,
    SQLITE_FAULT_SYNC, SQLITE_FAULT_FILE_SIZE, SQLITE_FAULT_DELETE, SQLITE_FAULT_LOCK,
    SQLITE_FAULT_SHM_MAP, SQLITE_FAULT_CALL_COUNT
};

/* Registers the VFS as the default (idempotent). Returns 0 on success. */
int sqlite_faults_install(void);
/* Starts counting calls on files whose path contains `marker`; the `occurrence`-th call (from 1)
 * of `call` fails, once, with `full` ? SQLITE_FULL : an SQLITE_IOERR code. call < 0: count only. */
void sqlite_faults_arm(const char *marker, int call, int occurrence, int full);
/* The code a failed read returns (default SQLITE_IOERR_READ; the unix VFS returns
 * SQLITE_IOERR_CORRUPTFS for EIO). */
void sqlite_faults_read_error(int code);
/* Stops; returns 1 if the fault fired. */
int sqlite_faults_disarm(void);
/* Calls counted since arming. */
int sqlite_faults_count(int call);
#endif
