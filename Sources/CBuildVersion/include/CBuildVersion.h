#ifndef CBUILDVERSION_H
#define CBUILDVERSION_H

/// The version this program was stamped with (scripts/build-release), or "0.0.0-dev" for an
/// unstamped development build (plain `swift build`). A NUL-terminated string that lives as long
/// as the process. See version.c for how the stamp gets there.
const char *spool_build_version(void);

#endif
