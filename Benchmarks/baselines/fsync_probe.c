// fsync_probe DIR [K]: writes 4 KiB and fsyncs a file in DIR K times (default 9); prints the
// median fsync latency in milliseconds. This machine's fsync switches on its own between
// ~0.1 ms and ~4 ms: the probe before each pair tells which mode the pair ran in.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: fsync_probe DIR [K]\n"); return 64; }
    int k = argc > 2 ? atoi(argv[2]) : 9;
    if (k < 1 || k > 1000) k = 9;
    char path[4096], block[4096] = {0};
    snprintf(path, sizeof path, "%s/fsync-probe.%d", argv[1], getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror(path); return 74; }
    double samples[1000];
    for (int i = 0; i < k; i++) {
        if (write(fd, block, sizeof block) != sizeof block) { perror("write"); return 74; }
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (fsync(fd) != 0) { perror("fsync"); return 74; }
        clock_gettime(CLOCK_MONOTONIC, &b);
        samples[i] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    }
    close(fd);
    unlink(path);
    qsort(samples, k, sizeof(double), compare);
    printf("%.3f\n", samples[k / 2]);
    return 0;
}
