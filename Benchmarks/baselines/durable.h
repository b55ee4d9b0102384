// The durable file operations the spool's guarantees need, as plain system calls: the floor
// the C baselines of scripts/bench are built from (no names validated, no headers, no checks).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline void die(const char *what) { perror(what); exit(74); }
static inline void must(int result, const char *what) { if (result < 0) die(what); }

static inline int opendir_at(int parent, const char *name) {
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY);
    if (fd < 0) die(name);
    return fd;
}

static inline void mkdirs(const char *path) {
    char buffer[4096];
    snprintf(buffer, sizeof buffer, "%s", path);
    for (char *p = buffer + 1; *p; p++) if (*p == '/') { *p = 0; mkdir(buffer, 0755); *p = '/'; }
    mkdir(buffer, 0755);
}

/// A name unique among processes: pid, monotonic nanoseconds and a counter.
static inline void unique_name(char *out, size_t size) {
    static unsigned counter;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(out, size, "%ld%09ld-%d-%u", (long)now.tv_sec, now.tv_nsec, getpid(), counter++);
}

static inline unsigned bucket_of(const char *name) {
    unsigned hash = 2166136261u;
    for (; *name; name++) hash = (hash ^ (unsigned char)*name) * 16777619u;
    return hash % 256;
}

static inline void write_all(int fd, const void *bytes, size_t length) {
    const char *p = bytes;
    while (length > 0) {
        ssize_t n = write(fd, p, length);
        if (n < 0) { if (errno == EINTR) continue; die("write"); }
        p += n, length -= n;
    }
}

/// Stage in `tmp`: create, write, fsync, close; rename into `dest` as `name`; fsync `dest`.
/// Two fsyncs: the durable enqueue of one item.
static inline void publish(int tmp, int dest, const char *name, const void *bytes, size_t length) {
    int fd = openat(tmp, name, O_WRONLY | O_CREAT | O_EXCL, 0640);
    if (fd < 0) die("create");
    write_all(fd, bytes, length);
    must(fsync(fd), "fsync file");
    must(close(fd), "close");
    must(renameat(tmp, name, dest, name), "rename");
    must(fsync(dest), "fsync directory");
}

/// Appends one record to an append-only log under an flock, and fsyncs it: one fsync.
static inline void append_durably(int log, int lock, const void *bytes, size_t length) {
    must(flock(lock, LOCK_EX), "flock");
    write_all(log, bytes, length);
    must(fsync(log), "fsync log");
    must(flock(lock, LOCK_UN), "unlock");
}

/// Opens `<dir>/<name>` for appending (created if missing).
static inline int open_log(int dir, const char *name) {
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (fd < 0) die(name);
    return fd;
}

static inline char *read_whole(const char *path, size_t *length) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    struct stat st;
    must(fstat(fd, &st), "fstat");
    char *bytes = malloc(st.st_size + 1);
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, bytes + done, st.st_size - done);
        if (n <= 0) die("read");
        done += n;
    }
    close(fd);
    *length = done;
    return bytes;
}

/// Sizes close to the real ones: a queued allocate command (header + JSON) and a journal
/// status record (framed, uncompressed), from an strace of one submit.
enum { ITEM_BYTES = 480, RECORD_BYTES = 620, STORE_BYTES = 900, MESSAGE_BYTES = 1100 };
__attribute__((unused)) static char filler[4096];
