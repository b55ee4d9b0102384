/// The file names items carry in each state directory of a queue. All mutable state of an item
/// (attempt count, due time, lease holder and deadline) lives in its name, so every state change
/// is one atomic `rename(2)` that fails with `ENOENT` if another process moved the item first.
///
///     ready/<bucket>/<id>.<attempts>.<due-ms>
///     active/<id>.<attempts>.<holder>.<deadline-ms>
///     dead/<id>.<attempts>            (and dead/<id>.error: the last error, UTF-8 text)
enum EntryName {
    struct Ready: Equatable {
        var id: ItemID
        var attempts: Int
        var due: Int64
        var name: String { "\(id.rawValue).\(attempts).\(due)" }
    }

    struct Active: Equatable {
        var id: ItemID
        var attempts: Int
        var holder: ProcessIdentity
        var deadline: Int64
        var name: String { "\(id.rawValue).\(attempts).\(holder.token).\(deadline)" }
    }

    struct Dead: Equatable {
        var id: ItemID
        var attempts: Int
        var name: String { "\(id.rawValue).\(attempts)" }
        static func errorName(_ id: ItemID) -> String { "\(id.rawValue).error" }
    }

    static func ready(_ name: String) -> Ready? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let id = ItemID(String(parts[0])),
              let attempts = Int(parts[1]), attempts >= 0, let due = Int64(parts[2]), due >= 0 else { return nil }
        return Ready(id: id, attempts: attempts, due: due)
    }

    static func active(_ name: String) -> Active? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, let id = ItemID(String(parts[0])), let attempts = Int(parts[1]), attempts >= 0,
              let holder = ProcessIdentity(token: String(parts[2])), let deadline = Int64(parts[3]) else { return nil }
        return Active(id: id, attempts: attempts, holder: holder, deadline: deadline)
    }

    static func dead(_ name: String) -> Dead? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let id = ItemID(String(parts[0])), let attempts = Int(parts[1]), attempts >= 0 else { return nil }
        return Dead(id: id, attempts: attempts)
    }
}
