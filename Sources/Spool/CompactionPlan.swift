/// The first record of every segment compaction writes (see `docs/spool-format.md`,
/// "Compaction"): `{"compaction":1,"at":<ms>}`. It is not an index event (no `entity`), so the
/// index and every version-1 reader ignore it. A reader resuming at a position *inside* a sealed
/// segment whose first record is this marker reads that segment again from its header: the
/// segment was rewritten since the position was taken, and its offsets mean nothing any more.
enum CompactionMarker {
    static let prefix = Array("{\"compaction\":".utf8)

    static func payload(at: Int64) -> [UInt8] { Array("{\"compaction\":1,\"at\":\(at)}".utf8) }

    static func isMarker<C: Collection<UInt8>>(_ payload: C) -> Bool { payload.starts(with: prefix) }

    /// Whether the segment `bytes` (uncompressed, header of `headerLength` bytes) was written by
    /// compaction: its first frame is a valid marker.
    static func isCompacted(_ bytes: [UInt8], headerLength: Int) -> Bool {
        guard let end = JournalSegment.validFrame(in: bytes, at: headerLength) else { return false }
        return isMarker(bytes[(headerLength + JournalSegment.frameHeaderSize)..<end])
    }
}

/// What compaction decided from one read of the journal: which records of the sealed segments it
/// rewrites survive, in which output segment each goes, and which entities leave the journal.
///
/// The rules (the reasons are in `docs/spool-format.md`, "Compaction"):
/// - only sealed segments are rewritten (never the live one, nor a sealed segment whose `.log`
///   still exists: an interrupted seal the appender finishes), and none at or below a segment
///   with damage (damage is never cut: those stay as they are);
/// - an index event survives if it is its entity's latest (the index's version rule, over the
///   whole journal): an event superseded or equalled by one elsewhere goes, as do older ones;
/// - other records survive as they are (the journal may carry records the index ignores), except
///   the compaction markers, which are written afresh;
/// - a surviving record goes into an output segment whose sequence number is at least that of
///   the segment it came from, so that a reader positioned anywhere still finds, at or after its
///   position, the latest event of everything it has not read;
/// - an entity is dropped (retention) only if every one of its events lies in the rewritten
///   segments and the caller's predicate allows it for its latest event.
struct CompactionPlan {
    struct Kept {
        var source: UInt64
        var offset: Int
        var payload: [UInt8]
        /// The entity, for index events.
        var entity: ExactText?
    }

    /// Sealed segments rewritten, ascending.
    var range: [UInt64] = []
    /// Output segments: sequence number and the records, in journal order.
    var pieces: [(sequence: UInt64, records: [Kept])] = []
    /// The latest events of the entities retention drops.
    var dropped: [IndexEvent] = []
    var droppedEntities: Set<ExactText> = []
    /// Records read from the rewritten segments (markers excluded).
    var recordsRead = 0
    /// Whether every rewritten segment is already a compacted one with nothing superseded in it,
    /// in the same layout: rewriting would change nothing.
    var unchanged = false
    /// The highest sealed segment with damage: nothing at or below it is rewritten.
    var damagedThrough: UInt64?

    var recordsKept: Int { pieces.reduce(0) { $0 + $1.records.count } }

    /// Plans the compaction of `journal`: `sealed` are the segments it may rewrite (ascending),
    /// `mayDrop` the caller's retention predicate over an entity's latest event.
    static func make(journal: Journal, sealed candidates: [UInt64], pieceBytes: Int,
                     mayDrop: (IndexEvent) -> Bool) throws -> (CompactionPlan, [JournalDamage]) {
        var plan = CompactionPlan()
        struct Latest {
            var event: IndexEvent
            var kept: Kept
            var first: UInt64
            var last: UInt64
        }
        var latest: [ExactText: Latest] = [:]
        var others: [Kept] = []
        var compacted: Set<UInt64> = []
        var perSegment: [UInt64: Int] = [:]
        let candidateSet = Set(candidates)
        let result = try journal.read(from: .start) { record in
            let sequence = record.position.segment
            if candidateSet.contains(sequence), record.position.offset > 0, CompactionMarker.isMarker(record.payload) {
                compacted.insert(sequence)
                return
            }
            perSegment[sequence, default: 0] += 1
            let kept = Kept(source: sequence, offset: record.position.offset, payload: record.payload)
            guard let event = IndexEvent.decode(record.payload) else {
                others.append(kept)
                return
            }
            let key = ExactText(event.entity)
            if var known = latest[key] {
                known.first = min(known.first, sequence)
                known.last = max(known.last, sequence)
                if StatusIndex.supersedes(event, known.event) {
                    known.event = event
                    known.kept = Kept(source: sequence, offset: record.position.offset, payload: record.payload, entity: key)
                }
                latest[key] = known
            } else {
                latest[key] = Latest(event: event, kept: Kept(source: sequence, offset: record.position.offset,
                                                              payload: record.payload, entity: key),
                                     first: sequence, last: sequence)
            }
        }
        plan.damagedThrough = result.damage.map(\.sequence).filter { candidateSet.contains($0) }.max()
        let damagedThrough = plan.damagedThrough
        plan.range = candidates.filter { sequence in damagedThrough.map { sequence > $0 } ?? true }
        guard let low = plan.range.first, let high = plan.range.last else { return (plan, result.damage) }
        let inRange = { (sequence: UInt64) in sequence >= low && sequence <= high && candidateSet.contains(sequence) }
        plan.recordsRead = plan.range.reduce(0) { $0 + (perSegment[$1] ?? 0) }
        var survivors = others.filter { inRange($0.source) }
        for (key, entry) in latest where inRange(entry.kept.source) {
            if inRange(entry.first), inRange(entry.last), mayDrop(entry.event) {
                plan.dropped.append(entry.event)
                plan.droppedEntities.insert(key)
            }
            survivors.append(entry.kept)
        }
        plan.dropped.sort { ($0.entity.utf8.lexicographicallyPrecedes($1.entity.utf8)) }
        // Pieces, from the highest source down: a piece takes the number of the first (highest)
        // source it holds, and closes once it holds `pieceBytes` when a new source begins.
        survivors.sort { ($0.source, $0.offset) > ($1.source, $1.offset) }
        var current: (sequence: UInt64, records: [Kept], bytes: Int)?
        for record in survivors {
            if let open = current, open.bytes >= pieceBytes, record.source < open.sequence,
               open.records.last.map({ $0.source != record.source }) ?? true {
                plan.pieces.append((open.sequence, open.records.reversed()))
                current = nil
            }
            if current == nil { current = (record.source, [], 0) }
            current!.records.append(record)
            current!.bytes += record.payload.count + JournalSegment.frameHeaderSize
        }
        if let open = current { plan.pieces.append((open.sequence, open.records.reversed())) }
        plan.pieces.reverse()
        if plan.pieces.isEmpty {
            // Nothing survives (everything superseded elsewhere): an empty compacted segment
            // keeps the highest number, so the journal's sequence never goes back.
            plan.pieces = [(high, [])]
        }
        // Already compacted and nothing superseded (nor an empty segment below the highest):
        // nothing to rewrite; the layout stays as it is (a retention pass rewrites segments of it).
        let empty = plan.range.dropLast().filter { (perSegment[$0] ?? 0) == 0 }
        if plan.range.allSatisfy(compacted.contains), plan.recordsKept == plan.recordsRead, empty.isEmpty {
            plan.unchanged = true
            var bySource: [UInt64: [Kept]] = [:]
            for piece in plan.pieces { for record in piece.records { bySource[record.source, default: []].append(record) } }
            plan.pieces = plan.range.map { sequence in
                (sequence, (bySource[sequence] ?? []).sorted { $0.offset < $1.offset })
            }
        }
        return (plan, result.damage)
    }

    /// The uncompressed bytes of an output segment: header, marker, then the records.
    static func segmentBytes(_ records: [Kept], createdAt: Int64, excluding dropped: Set<ExactText> = []) -> [UInt8] {
        var bytes = JournalSegment.header(createdAt: createdAt)
        bytes += JournalSegment.frame(CompactionMarker.payload(at: createdAt))
        for record in records {
            if let entity = record.entity, dropped.contains(entity) { continue }
            bytes += JournalSegment.frame(record.payload)
        }
        return bytes
    }
}
