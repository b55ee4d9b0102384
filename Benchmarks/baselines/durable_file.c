// durable_file SRC DIR: reads SRC and writes its bytes as one durable file: DIR/tmp/<name>,
// fsync, renamed into DIR/ready/, DIR/ready fsynced (two fsyncs). The floor of a batch submit.
#include "durable.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: durable_file SRC DIR\n"); return 64; }
    size_t length;
    char *bytes = read_whole(argv[1], &length);
    char path[4096];
    snprintf(path, sizeof path, "%s/tmp", argv[2]); mkdirs(path);
    snprintf(path, sizeof path, "%s/ready", argv[2]); mkdirs(path);
    int root = opendir_at(AT_FDCWD, argv[2]);
    int tmp = opendir_at(root, "tmp"), ready = opendir_at(root, "ready");
    char name[128];
    unique_name(name, sizeof name);
    publish(tmp, ready, name, bytes, length);
    return 0;
}
