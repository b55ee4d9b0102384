// runner: starts a command N times as separate processes (fork/exec, no shell) in LANES
// parallel lanes (each lane runs its share one after another) and prints the wall time in
// seconds. Standard output and error of the children go to /dev/null. In the arguments, "%n"
// is replaced by the run's index (0..N-1). Exits 1 if any run exited non-zero or died.
//   runner [-p LANES] N cmd [args...]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char **argvFor(char **template, int count, long index) {
    char **out = calloc(count + 1, sizeof(char *));
    for (int i = 0; i < count; i++) {
        char *hit = strstr(template[i], "%n");
        if (!hit) { out[i] = template[i]; continue; }
        size_t size = strlen(template[i]) + 24;
        out[i] = malloc(size);
        snprintf(out[i], size, "%.*s%ld%s", (int)(hit - template[i]), template[i], index, hit + 2);
    }
    return out;
}

int main(int argc, char **argv) {
    int lanes = 1, first = 1;
    if (argc > 2 && strcmp(argv[1], "-p") == 0) { lanes = atoi(argv[2]); first = 3; }
    if (argc < first + 2 || lanes < 1) { fprintf(stderr, "usage: runner [-p LANES] N cmd [args...]\n"); return 64; }
    long n = atol(argv[first]);
    char **command = argv + first + 1;
    int count = argc - first - 1;
    int devnull = open("/dev/null", O_WRONLY);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long next = 0, running = 0, failed = 0;
    while (next < n || running > 0) {
        while (running < lanes && next < n) {
            char **args = argvFor(command, count, next);
            pid_t pid = fork();
            if (pid < 0) { perror("fork"); return 71; }
            if (pid == 0) {
                dup2(devnull, 1);
                if (!getenv("RUNNER_STDERR")) dup2(devnull, 2);
                execvp(args[0], args);
                _exit(127);
            }
            next++, running++;
        }
        int status;
        if (wait(&status) > 0) {
            running--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%.6f\n", (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9);
    if (failed) { fprintf(stderr, "runner: %ld of %ld runs of %s failed\n", failed, n, command[0]); return 1; }
    return 0;
}
