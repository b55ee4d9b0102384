#include "sqlite_faults.h"
#include <sqlite3.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3_vfs *base_vfs;
static sqlite3_vfs faulty_vfs;
static char marker[512];
static int armed, target = -1, occurrence, full, fired;
static int counts[SQLITE_FAULT_CALL_COUNT];

typedef struct {
    sqlite3_file file;
    const char *name; /* valid until xClose, as SQLite guarantees */
    sqlite3_file *real;
} faulty_file;

/* Returns the error code to fail with, or SQLITE_OK to go ahead. */
static int trip(const char *name, int call, int ioerr) {
    int result = SQLITE_OK;
    pthread_mutex_lock(&lock);
    if (armed && name && marker[0] && strstr(name, marker)) {
        counts[call]++;
        if (call == target && counts[call] == occurrence && !fired) {
            fired = 1;
            result = full && (call == SQLITE_FAULT_WRITE || call == SQLITE_FAULT_TRUNCATE || call == SQLITE_FAULT_SYNC)
                ? SQLITE_FULL : ioerr;
        }
    }
    pthread_mutex_unlock(&lock);
    return result;
}

#define REAL(f) (((faulty_file *)(f))->real)
#define WATCHED(f) (((faulty_file *)(f))->name)

static int f_close(sqlite3_file *f) {
    int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
    return rc;
}
static int read_error = SQLITE_IOERR_READ;
void sqlite_faults_read_error(int code) { read_error = code; }
static int f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o) {
    int rc = trip(WATCHED(f), SQLITE_FAULT_READ, read_error);
    return rc ? rc : REAL(f)->pMethods->xRead(REAL(f), p, n, o);
}
static int f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o) {
    int rc = trip(WATCHED(f), SQLITE_FAULT_WRITE, SQLITE_IOERR_WRITE);
    return rc ? rc : REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 size) {
    int rc = trip(WATCHED(f), SQLITE_FAULT_TRUNCATE, SQLITE_IOERR_TRUNCATE);
    return rc ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int f_sync(sqlite3_file *f, int flags) {
    int rc = trip(WATCHED(f), SQLITE_FAULT_SYNC, SQLITE_IOERR_FSYNC);
    return rc ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int f_file_size(sqlite3_file *f, sqlite3_int64 *size) {
    int rc = trip(WATCHED(f), SQLITE_FAULT_FILE_SIZE, SQLITE_IOERR_FSTAT);
    return rc ? rc : REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int f_lock(sqlite3_file *f, int level) {
    int rc = trip(WATCHED(f), SQLITE_FAULT_LOCK, SQLITE_IOERR_LOCK);
    return rc ? rc : REAL(f)->pMethods->xLock(REAL(f), level);
}
static int f_unlock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xUnlock(REAL(f), level); }
static int f_check_reserved(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int f_file_control(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int f_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int f_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int f_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp) {
    int rc = trip(WATCHED(f), SQLITE_FAULT_SHM_MAP, SQLITE_IOERR_SHMMAP);
    return rc ? rc : REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, pp);
}
static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags) { return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags); }
static void f_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int f_shm_unmap(sqlite3_file *f, int delete_flag) { return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag); }
static int f_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp); }
static int f_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods faulty_methods = {
    3, f_close, f_read, f_write, f_truncate, f_sync, f_file_size, f_lock, f_unlock, f_check_reserved,
    f_file_control, f_sector_size, f_device, f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap, f_fetch, f_unfetch
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags) {
    faulty_file *wrapper = (faulty_file *)file;
    int rc;
    (void)vfs;
    wrapper->real = (sqlite3_file *)(wrapper + 1);
    wrapper->name = name;
    wrapper->file.pMethods = NULL;
    rc = trip(name, SQLITE_FAULT_OPEN, SQLITE_CANTOPEN);
    if (rc) return rc;
    rc = base_vfs->xOpen(base_vfs, name, wrapper->real, flags, out_flags);
    if (rc == SQLITE_OK) wrapper->file.pMethods = &faulty_methods;
    return rc;
}
static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
    int rc = trip(name, SQLITE_FAULT_DELETE, SQLITE_IOERR_DELETE);
    (void)vfs;
    return rc ? rc : base_vfs->xDelete(base_vfs, name, sync_dir);
}
static int v_access(sqlite3_vfs *v, const char *n, int f, int *o) { (void)v; return base_vfs->xAccess(base_vfs, n, f, o); }
static int v_full_path(sqlite3_vfs *v, const char *n, int size, char *out) { (void)v; return base_vfs->xFullPathname(base_vfs, n, size, out); }
static void *v_dl_open(sqlite3_vfs *v, const char *n) { (void)v; return base_vfs->xDlOpen(base_vfs, n); }
static void v_dl_error(sqlite3_vfs *v, int n, char *m) { (void)v; base_vfs->xDlError(base_vfs, n, m); }
static void (*v_dl_sym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return base_vfs->xDlSym(base_vfs, h, s); }
static void v_dl_close(sqlite3_vfs *v, void *h) { (void)v; base_vfs->xDlClose(base_vfs, h); }
static int v_randomness(sqlite3_vfs *v, int n, char *out) { (void)v; return base_vfs->xRandomness(base_vfs, n, out); }
static int v_sleep(sqlite3_vfs *v, int us) { (void)v; return base_vfs->xSleep(base_vfs, us); }
static int v_current_time(sqlite3_vfs *v, double *t) { (void)v; return base_vfs->xCurrentTime(base_vfs, t); }
static int v_last_error(sqlite3_vfs *v, int n, char *m) { (void)v; return base_vfs->xGetLastError(base_vfs, n, m); }
static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return base_vfs->xCurrentTimeInt64(base_vfs, t); }

int sqlite_faults_install(void) {
    int rc = SQLITE_OK;
    pthread_mutex_lock(&lock);
    if (!base_vfs) {
        base_vfs = sqlite3_vfs_find(NULL);
        if (!base_vfs) { pthread_mutex_unlock(&lock); return SQLITE_ERROR; }
        faulty_vfs.iVersion = 2;
        faulty_vfs.szOsFile = (int)sizeof(faulty_file) + base_vfs->szOsFile;
        faulty_vfs.mxPathname = base_vfs->mxPathname;
        faulty_vfs.zName = "spool-faults";
        faulty_vfs.xOpen = v_open;
        faulty_vfs.xDelete = v_delete;
        faulty_vfs.xAccess = v_access;
        faulty_vfs.xFullPathname = v_full_path;
        faulty_vfs.xDlOpen = v_dl_open;
        faulty_vfs.xDlError = v_dl_error;
        faulty_vfs.xDlSym = v_dl_sym;
        faulty_vfs.xDlClose = v_dl_close;
        faulty_vfs.xRandomness = v_randomness;
        faulty_vfs.xSleep = v_sleep;
        faulty_vfs.xCurrentTime = v_current_time;
        faulty_vfs.xGetLastError = v_last_error;
        faulty_vfs.xCurrentTimeInt64 = v_current_time64;
        rc = sqlite3_vfs_register(&faulty_vfs, 1);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void sqlite_faults_arm(const char *name_marker, int call, int occ, int disk_full) {
    pthread_mutex_lock(&lock);
    strncpy(marker, name_marker, sizeof(marker) - 1);
    marker[sizeof(marker) - 1] = 0;
    memset(counts, 0, sizeof(counts));
    armed = 1;
    target = call;
    occurrence = occ;
    full = disk_full;
    fired = 0;
    pthread_mutex_unlock(&lock);
}

int sqlite_faults_disarm(void) {
    int result;
    pthread_mutex_lock(&lock);
    armed = 0;
    result = fired;
    pthread_mutex_unlock(&lock);
    return result;
}

int sqlite_faults_count(int call) {
    int result;
    pthread_mutex_lock(&lock);
    result = (call >= 0 && call < SQLITE_FAULT_CALL_COUNT) ? counts[call] : 0;
    pthread_mutex_unlock(&lock);
    return result;
}
