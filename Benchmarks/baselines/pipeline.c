// pipeline: the durable disk work the whole pipeline must do for one request, one process per
// request (scripts/bench runs it from 4 parallel lanes, as the end-to-end row submits):
//   submit     item file + fsync, rename into the allocation bucket + fsync, journal + fsync  (3)
//   allocator  claim (rename to active/, read), decision committed to its store log + fsync,
//              status journaled + fsync, notification item file + fsync, rename + fsync,
//              the allocation item removed + fsync of active/                              (6)
//   notifier   claim, Maildir: tmp file + fsync, link into new/ + fsync, status journaled +
//              fsync, the notification item removed + fsync of active/                      (4)
// 13 fsyncs; no parsing, no SQLite, no waiting between the stages.
//   pipeline init DIR   creates the layout
//   pipeline DIR        one request through all stages
#include "durable.h"

static const char *dirs[] = {"tmp", "journal", "store", "maildir/tmp", "maildir/new",
                             "queues/allocation/active", "queues/notifications/active", NULL};

static void claim_and_read(int ready, int active, const char *name) {
    must(renameat(ready, name, active, name), "claim");
    char buffer[4096];
    int fd = openat(active, name, O_RDONLY);
    if (fd < 0) die("open claimed");
    if (read(fd, buffer, sizeof buffer) < 0) die("read claimed");
    close(fd);
}

int main(int argc, char **argv) {
    char path[4096];
    if (argc == 3 && strcmp(argv[1], "init") == 0) {
        for (int i = 0; dirs[i]; i++) { snprintf(path, sizeof path, "%s/%s", argv[2], dirs[i]); mkdirs(path); }
        for (int b = 0; b < 256; b++) {
            snprintf(path, sizeof path, "%s/queues/allocation/ready/%02x", argv[2], b); mkdirs(path);
            snprintf(path, sizeof path, "%s/queues/notifications/ready/%02x", argv[2], b); mkdirs(path);
        }
        return 0;
    }
    if (argc != 2) { fprintf(stderr, "usage: pipeline [init] DIR\n"); return 64; }
    int root = opendir_at(AT_FDCWD, argv[1]);
    int tmp = opendir_at(root, "tmp"), journal = opendir_at(root, "journal"), storeDir = opendir_at(root, "store");
    int lock = open_log(journal, "lock"), log = open_log(journal, "1.log");
    char name[128], note[160];
    unique_name(name, sizeof name);
    snprintf(note, sizeof note, "%s-n", name);
    snprintf(path, sizeof path, "queues/allocation/ready/%02x", bucket_of(name));
    int allocReady = opendir_at(root, path), allocActive = opendir_at(root, "queues/allocation/active");
    snprintf(path, sizeof path, "queues/notifications/ready/%02x", bucket_of(note));
    int noteReady = opendir_at(root, path), noteActive = opendir_at(root, "queues/notifications/active");
    // submit
    publish(tmp, allocReady, name, filler, ITEM_BYTES);
    append_durably(log, lock, filler, RECORD_BYTES);
    // allocator
    claim_and_read(allocReady, allocActive, name);
    int storeLock = open_log(storeDir, "lock"), store = open_log(storeDir, "wal");
    append_durably(store, storeLock, filler, STORE_BYTES);
    append_durably(log, lock, filler, RECORD_BYTES);
    publish(tmp, noteReady, note, filler, ITEM_BYTES);
    must(unlinkat(allocActive, name, 0), "acknowledge");
    must(fsync(allocActive), "fsync active");
    // notifier
    claim_and_read(noteReady, noteActive, note);
    int mailTmp = opendir_at(root, "maildir/tmp"), mailNew = opendir_at(root, "maildir/new");
    int fd = openat(mailTmp, note, O_WRONLY | O_CREAT | O_EXCL, 0640);
    if (fd < 0) die("create message");
    write_all(fd, filler, MESSAGE_BYTES);
    must(fsync(fd), "fsync message");
    close(fd);
    must(linkat(mailTmp, note, mailNew, note, 0), "link into new");
    must(fsync(mailNew), "fsync new");
    must(unlinkat(mailTmp, note, 0), "unlink tmp");
    append_durably(log, lock, filler, RECORD_BYTES);
    must(unlinkat(noteActive, note, 0), "acknowledge notification");
    must(fsync(noteActive), "fsync active");
    return 0;
}
