#ifndef SPOOL_CZLIB_SHIM_H
#define SPOOL_CZLIB_SHIM_H
#include <zlib.h>

/* zlib's deflateInit2/inflateInit macros are invisible to Swift: wrap them. */
static inline int spool_deflate_init(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
}
static inline int spool_inflate_init(z_streamp strm) {
    return inflateInit2(strm, MAX_WBITS);
}
#endif
