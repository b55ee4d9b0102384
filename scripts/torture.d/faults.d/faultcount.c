/*
 * faultcount: an LD_PRELOAD library loaded AHEAD of libfiu's POSIX preload library. It wraps
 * the calls libfiu can fail (and the *at calls it cannot see) and passes each to the next
 * definition (libfiu's, then libc's). When a call fails with EIO or ENOSPC it appends one line
 * "<call> <errno>" to the file named by FAULTCOUNT_LOG (one write(2) per line, O_APPEND, via
 * raw system calls so that nothing recurses into the wrappers). On a healthy file system these
 * failures are exactly the faults libfiu injected; on a full one they are the real ENOSPCs.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static int log_fd = -2;
static int fiu_active;

__attribute__((constructor)) static void faultcount_init(void) { fiu_active = getenv("FIU_ENABLE") != NULL; }

static void note(const char *call, int code) {
    if (code != EIO && code != ENOSPC && code != EDQUOT) return;
    int saved = errno;
    if (log_fd == -2) {
        const char *path = getenv("FAULTCOUNT_LOG");
        log_fd = path ? (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
    }
    if (log_fd >= 0) {
        char line[96];
        size_t n = strlen(call);
        if (n > 64) n = 64;
        memcpy(line, call, n);
        line[n++] = ' ';
        const char *name = code == EIO ? "EIO" : code == ENOSPC ? "ENOSPC" : "EDQUOT";
        size_t m = strlen(name);
        memcpy(line + n, name, m);
        n += m;
        line[n++] = '\n';
        syscall(SYS_write, log_fd, line, n);
    }
    errno = saved;
}

#define NEXT(name) static __typeof__(name) *next; if (!next) next = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

#define WRAP_INT(ret, name, params, args) \
    ret name params { NEXT(name); ret r = next args; if (r < 0) note(#name, errno); return r; }

WRAP_INT(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n))
WRAP_INT(ssize_t, pwrite64, (int fd, const void *b, size_t n, off64_t o), (fd, b, n, o))
WRAP_INT(ssize_t, pwrite, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
WRAP_INT(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n))
WRAP_INT(ssize_t, pread64, (int fd, void *b, size_t n, off64_t o), (fd, b, n, o))
WRAP_INT(ssize_t, pread, (int fd, void *b, size_t n, off_t o), (fd, b, n, o))
WRAP_INT(int, fsync, (int fd), (fd))
WRAP_INT(int, fdatasync, (int fd), (fd))
/* libfiu fails close(2) by returning -1 without closing; Linux releases the descriptor even
 * when close reports an error (and a leaked descriptor keeps its flock(2) lock: the process
 * would then wait for itself). Under libfiu (FIU_ENABLE set), an injected failure therefore
 * closes the descriptor for real, as the kernel would, and still reports the error. */
int close(int fd) {
    NEXT(close);
    int r = next(fd);
    if (r < 0) {
        int code = errno;
        if (fiu_active && (code == EIO || code == ENOSPC)) syscall(SYS_close, fd);
        note("close", code);
        errno = code;
    }
    return r;
}
WRAP_INT(int, ftruncate, (int fd, off_t l), (fd, l))
WRAP_INT(int, ftruncate64, (int fd, off64_t l), (fd, l))
WRAP_INT(int, rename, (const char *a, const char *b), (a, b))
WRAP_INT(int, renameat, (int d1, const char *a, int d2, const char *b), (d1, a, d2, b))
WRAP_INT(int, unlink, (const char *a), (a))
WRAP_INT(int, unlinkat, (int d, const char *a, int f), (d, a, f))
WRAP_INT(int, mkdirat, (int d, const char *a, mode_t m), (d, a, m))
WRAP_INT(int, linkat, (int d1, const char *a, int d2, const char *b, int f), (d1, a, d2, b, f))

#define WRAP_OPEN(name, ...) \
    int name(__VA_ARGS__, int flags, ...) { \
        NEXT(name); mode_t mode = 0; \
        if (flags & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

WRAP_OPEN(open, const char *p) int r = next(p, flags, mode); if (r < 0) note("open", errno); return r; }
WRAP_OPEN(open64, const char *p) int r = next(p, flags, mode); if (r < 0) note("open", errno); return r; }
WRAP_OPEN(openat, int d, const char *p) int r = next(d, p, flags, mode); if (r < 0) note("openat", errno); return r; }
WRAP_OPEN(openat64, int d, const char *p) int r = next(d, p, flags, mode); if (r < 0) note("openat", errno); return r; }

void *mmap(void *a, size_t l, int p, int f, int fd, off_t o) {
    NEXT(mmap); void *r = next(a, l, p, f, fd, o); if (r == MAP_FAILED) note("mmap", errno); return r;
}
void *mmap64(void *a, size_t l, int p, int f, int fd, off64_t o) {
    NEXT(mmap64); void *r = next(a, l, p, f, fd, o); if (r == MAP_FAILED) note("mmap", errno); return r;
}
DIR *fdopendir(int fd) {
    NEXT(fdopendir); DIR *r = next(fd); if (!r) note("fdopendir", errno); return r;
}
struct dirent *readdir(DIR *d) {
    NEXT(readdir); int saved = errno; errno = 0; struct dirent *r = next(d);
    if (!r && errno) note("readdir", errno); else if (r) errno = saved; return r;
}
struct dirent64 *readdir64(DIR *d) {
    NEXT(readdir64); int saved = errno; errno = 0; struct dirent64 *r = next(d);
    if (!r && errno) note("readdir", errno); else if (r) errno = saved; return r;
}
