#if canImport(Glibc)
import Glibc
#endif
import Logging

/// How many items a queue holds in each state.
public struct QueueCounts: Sendable, Equatable, Codable {
    /// Waiting and due now.
    public var ready = 0
    /// Waiting for a retry time in the future.
    public var deferred = 0
    /// Claimed by a consumer.
    public var active = 0
    /// In the dead-letter area.
    public var dead = 0
}

extension Queue {
    /// Extends a held lease to `lease` from now. The item keeps its place; only the deadline in
    /// its name changes (one `rename(2)`).
    ///
    /// - Throws: ``SpoolError/leaseLost(id:)`` if the lease was already lost.
    public func renew(_ item: inout ClaimedItem, lease: Duration) throws(SpoolError) {
        var renewed = item.entry
        renewed.deadline = Clock.nowMilliseconds() + lease.milliseconds
        do {
            try active.move(item.entry.name, to: active, as: renewed.name, operation: "renew lease")
        } catch .notFound {
            throw .leaseLost(id: item.id.rawValue)
        }
        item = ClaimedItem(queue: item.queue, entry: renewed, enqueuedAt: item.enqueuedAt, payload: item.payload)
    }

    /// Returns to the queue, due at once, every claimed item whose lease has expired or whose
    /// holder process is provably gone, counting it as a failed attempt (so an item that keeps
    /// killing its consumer ends in `dead/`). Unreadable names in `active/` are quarantined. Safe to run from several
    /// processes at once: each item is reclaimed by exactly one of them. Returns the ids reclaimed.
    @discardableResult
    public func reclaimExpiredLeases(now: Int64 = Clock.nowMilliseconds()) throws(SpoolError) -> [ItemID] {
        var reclaimed: [ItemID] = []
        for name in try active.names() {
            guard let entry = EntryName.active(name) else {
                spool.quarantine(name, in: active, queue: self.name, reason: "name is not <id>.<attempts>.<holder>.<deadline>")
                continue
            }
            let expired = entry.deadline < now
            let orphaned = entry.holder != .current && entry.holder.isProvablyGone
            guard expired || orphaned else { continue }
            let reason = expired ? "lease expired" : "holder process \(entry.holder) is gone"
            do {
                _ = try retry(activeName: name, id: entry.id, attempts: entry.attempts + 1, error: reason, immediately: true)
                reclaimed.append(entry.id)
                logger.notice("reclaimed item", metadata: ["queue": "\(self.name)", "id": "\(entry.id)", "reason": "\(reason)"])
            } catch .leaseLost {
                continue  // its holder finished it, or another reclaimer was first
            }
        }
        return reclaimed
    }

    /// The payload of item `id` while it waits or is claimed, without claiming it; nil when it is
    /// not in the queue (never enqueued, acknowledged, or dead).
    public func peek(id: ItemID) throws(SpoolError) -> [UInt8]? {
        let prefix = "\(id.rawValue)."
        // `active/` is listed only after the bucket was listed and read: an item claimed after
        // the bucket's listing (renamed before it could be read) is then in that listing.
        for directory in [try bucket(id.bucket), active] {
            for name in try directory.names() where name.hasPrefix(prefix) {
                guard let bytes = try? directory.readFile(name, limit: spool.configuration.maxItemBytes + 4096),
                      let file = try? ItemFile.decode(bytes), file.id == id else { continue }
                return file.payload
            }
        }
        return nil
    }

    /// The payloads of every item that waits or is claimed (not dead), in no order, skipping
    /// files that cannot be read or decoded. Reads every bucket: for a restricted `list`, where
    /// requests not yet taken by their consumer are known only here.
    public func queuedPayloads() throws(SpoolError) -> [[UInt8]] {
        var places: [Directory] = [active]
        for index in 0..<Self.bucketCount {
            if let directory = try? bucket(ItemID.bucketName(index), create: false) { places.append(directory) }
        }
        var payloads: [[UInt8]] = []
        for directory in places {
            for name in (try? directory.names()) ?? [] {
                guard let bytes = try? directory.readFile(name, limit: spool.configuration.maxItemBytes + 4096),
                      let file = try? ItemFile.decode(bytes) else { continue }
                payloads.append(file.payload)
            }
        }
        return payloads
    }

    /// Counts items by state. Reads every bucket: meant for operators, not for hot paths (see
    /// ``backlog(limit:)``).
    public func counts(now: Int64 = Clock.nowMilliseconds()) throws(SpoolError) -> QueueCounts {
        var counts = QueueCounts()
        for index in 0..<Self.bucketCount {
            for name in try waitingNames(inBucket: index) {
                guard let entry = EntryName.ready(name) else { continue }
                if entry.due <= now { counts.ready += 1 } else { counts.deferred += 1 }
            }
        }
        counts.active = try active.names().count
        counts.dead = try dead.names().filter { EntryName.dead($0) != nil }.count
        return counts
    }

    /// Number of waiting items (ready or deferred) plus claimed ones, counting only up to `limit`:
    /// cheap enough for admission control on every submit, even with a huge backlog.
    public func backlog(limit: Int) throws(SpoolError) -> Int {
        var total = try active.names().count
        for index in 0..<Self.bucketCount where total <= limit {
            total += try waitingNames(inBucket: index).count
        }
        return total
    }

    private func waitingNames(inBucket index: Int) throws(SpoolError) -> [String] {
        do {
            return try bucket(ItemID.bucketName(index), create: false).names()
        } catch .notFound {
            return []
        }
    }
}
