/// How the programs quote text their callers gave in an error message.
extension String {
    /// The text as it is echoed in an error message: quoted and escaped like a Swift string
    /// literal, and cut after 64 characters with `…` (an argument of 100 KB must not turn into
    /// an error line of 100 KB).
    public var echoed: String { shortened.debugDescription }

    /// The text cut after 64 characters with `…`, unquoted (for a file name before `:LINE:`).
    public var shortened: String { count <= 64 ? self : String(prefix(64)) + "…" }
}
