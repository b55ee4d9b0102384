// enqueue: the durable disk work of one `spoolctl submit`, as one process: the item file
// written to tmp/ and fsynced, renamed into its bucket of queues/allocation/ready/, the bucket
// directory fsynced, then one journal record appended under the journal's flock and fsynced.
// Three fsyncs, as the guarantee needs (docs/spool-format.md); nothing else.
//   enqueue init DIR    creates the layout (256 buckets, journal)
//   enqueue DIR         one durable submit
#include "durable.h"

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "init") == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tmp", argv[2]); mkdirs(path);
        snprintf(path, sizeof path, "%s/journal", argv[2]); mkdirs(path);
        for (int b = 0; b < 256; b++) { snprintf(path, sizeof path, "%s/queues/allocation/ready/%02x", argv[2], b); mkdirs(path); }
        return 0;
    }
    if (argc != 2) { fprintf(stderr, "usage: enqueue [init] DIR\n"); return 64; }
    int root = opendir_at(AT_FDCWD, argv[1]);
    int tmp = opendir_at(root, "tmp"), journal = opendir_at(root, "journal");
    char name[128], bucket[64];
    unique_name(name, sizeof name);
    snprintf(bucket, sizeof bucket, "queues/allocation/ready/%02x", bucket_of(name));
    int ready = opendir_at(root, bucket);
    publish(tmp, ready, name, filler, ITEM_BYTES);
    int lock = open_log(journal, "lock"), log = open_log(journal, "1.log");
    append_durably(log, lock, filler, RECORD_BYTES);
    return 0;
}
