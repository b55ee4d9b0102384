// The program's version, stamped into the linked binary after the build.
//
// Why a patched byte array and not a compile-time define or a generated source file:
// - A define (-Xcc -DVERSION=...) or a generated file changes a compiler input, so every new
//   version (each commit, and scripts/deb-test's "newer version" package) would recompile and
//   relink the programs in .build-static: minutes on this machine, for one string.
// - A generated file must live under Sources/ for SwiftPM to compile it, which dirties the git
//   tree (or must be written and restored, which an interrupted build leaves dirty).
// - A build-tool plugin compiles and runs a plugin on every build and needs git inside it.
// So the array below holds a marker followed by room for the version; scripts/build-release
// copies each program out of the build directory and overwrites the bytes after the marker
// in the copy (scripts/lib/stamp-version; the marker must occur exactly once in the binary).
// The build directory's own binaries, and a plain `swift build`, keep "0.0.0-dev".
// `volatile` keeps the compiler from folding the contents into the function (it must read the
// bytes that are in the file), and the function is in a C file of its own so that no caller can
// inline it either.

#include "CBuildVersion.h"

#define SPOOL_VERSION_MARKER "\001SELF-STORAGE-VERSION-STAMP\001"
#define SPOOL_VERSION_ROOM 64 /* bytes for the version and its terminating NUL */

__attribute__((used))
static const volatile char spool_version_stamp[sizeof(SPOOL_VERSION_MARKER) - 1 + SPOOL_VERSION_ROOM] =
    SPOOL_VERSION_MARKER "0.0.0-dev";

const char *spool_build_version(void) {
    return (const char *)spool_version_stamp + sizeof(SPOOL_VERSION_MARKER) - 1;
}
