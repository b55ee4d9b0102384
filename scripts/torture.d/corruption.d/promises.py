"""The kinds of spool file the corruption campaign damages, and what the product promises
about each (docs/reliability.md): which damage it copies to corrupt/, which it does not detect,
the terminal states of a request and the marks of a crashed process."""

KINDS = ["item", "journal-live", "journal-sealed", "index", "store", "idempotency", "delivered",
         "maildir", "state", "config", "import"]

# Kinds whose damage the product promises to copy to corrupt/ when it reports it.
COPY_PROMISED = {"item", "journal-live", "journal-sealed", "index", "store", "idempotency"}

# docs/reliability.md, Limits: a flipped value inside a well-formed page of the allocator store
# is not detected (flips only: a truncated store must be detected); Maildir messages carry no
# checksum (nothing reads them back).
UNPROMISED = {"store", "maildir"}

TERMINAL = {"confirmed", "rejected", "cancelled", "completed"}
CRASH_MARKERS = ("Fatal error", "Swift runtime failure", "Illegal instruction", "Segmentation fault",
                 "Trace/breakpoint", "Assertion failed", "Precondition failed")
