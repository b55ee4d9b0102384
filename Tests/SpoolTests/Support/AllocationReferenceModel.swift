import Rentals

/// One operation of a random allocation scenario, kept as small integers so that the property
/// checker can shrink it (toward fewer operations and toward 0 in each field), and decoded into
/// a concrete command only when applied (`target` indices are taken modulo the requests or units
/// there are at that point, so removing an operation never makes a later one invalid).
struct AllocationOpCode: Sendable, Hashable, CustomStringConvertible {
    /// 0..<100, weighted into the kinds (``Kind``); 0 is a submit, the simplest operation.
    var kind: Int
    var a: Int, b: Int, c: Int, d: Int

    enum Kind: Sendable, Equatable {
        case submit, cancel, extend, end, addUnit, changeUnit, retire, reinstate, advance
    }

    var decodedKind: Kind {
        switch kind {
        case ..<40: .submit
        case ..<50: .cancel
        case ..<62: .extend
        case ..<70: .end
        case ..<74: .addUnit
        case ..<78: .changeUnit
        case ..<82: .retire
        case ..<86: .reinstate
        default: .advance
        }
    }

    static let sizes = ["S", "M", "L"]
    static let sites = ["north", "south"]

    // Submit fields.
    var size: String { Self.sizes[a % 3] }
    /// nil (any site) for 2.
    var site: String? { b % 3 == 2 ? nil : Self.sites[b % 3] }
    var startOffset: Int { c % 40 - 3 }   // -3…36 days from today
    var days: Int { 1 + d % 30 }
    var waitlist: Bool { (a / 3) % 2 == 0 }
    // Change fields.
    var changeDays: Int { 1 + b % 20 }
    // Unit fields.
    var unitSize: String { Self.sizes[b % 3] }
    var unitSite: String { Self.sites[c % 2] }
    var advanceDays: Int { 1 + a % 3 }

    var description: String {
        switch decodedKind {
        case .submit: "submit(\(size), site: \(site ?? "any"), start: today\(startOffset >= 0 ? "+" : "")\(startOffset), days: \(days)\(waitlist ? ", waitlist" : ""))"
        case .cancel: "cancel(#\(a))"
        case .extend: "extend(#\(a), by: \(changeDays))"
        case .end: "end(#\(a), earlier by: \(changeDays))"
        case .addUnit: "addUnit(\(Self.sizes[a % 3]), \(Self.sites[b % 2]))"
        case .changeUnit: "changeUnit(@\(a), \(unitSize), \(unitSite))"
        case .retire: "retire(@\(a))"
        case .reinstate: "reinstate(@\(a))"
        case .advance: "advance(\(advanceDays))"
        }
    }
}

/// The starting inventory and the operations of one scenario.
struct AllocationScenario: Sendable, CustomStringConvertible {
    /// (size index, site index) of each initial unit.
    var units: [[Int]]
    var ops: [AllocationOpCode]

    var description: String {
        let inventory = units.enumerated().map { "U\($0.offset)=\(AllocationOpCode.sizes[$0.element[0] % 3])@\(AllocationOpCode.sites[$0.element[1] % 2])" }
        return "units [\(inventory.joined(separator: ", "))], \(ops.count) ops:\n" + ops.enumerated().map { "  \($0.offset): \($0.element)" }.joined(separator: "\n")
    }
}

/// The allocation rules as plain Swift over lists of intervals: what the allocator must decide,
/// written independently of its SQL (best fit, first come first served waiting list, extensions
/// on the same unit, early ends, the daily pass). Days are days since the epoch.
struct AllocationReferenceModel {
    struct Unit: Equatable { var id: String; var size: String; var site: String; var inService: Bool }
    enum State: String { case assigned, rejected, waitlisted, cancelled, completed, expired }
    struct Rental: Equatable {
        var id: String; var size: String; var site: String?
        var start: Int; var end: Int
        var state: State; var unit: String?
        /// FCFS order while waitlisted.
        var waitSeq: Int?
    }
    enum Decision: Equatable { case assigned(String), rejected, waitlisted, cancelled, noChange, changed, refused }

    /// What the allocator under test supports (features land one by one).
    struct Features { var waitlist: Bool; var sites: Bool; var changes: Bool; var reinstate: Bool }

    let features: Features
    var today: Int
    var units: [Unit] = []
    var rentals: [String: Rental] = [:]
    private var nextSeq = 0

    init(features: Features, today: Int) {
        self.features = features
        self.today = today
    }

    static let noNeighbour = 100_000

    /// Best fit: among in-service units of `size` (at `site` when given) free for `[start, end)`,
    /// the lowest idle gap before plus after (a missing neighbour counts 100,000), then the lowest id.
    func bestUnit(size: String, site: String?, start: Int, end: Int, ignoring: String? = nil) -> String? {
        var best: (score: Int, id: String)?
        for unit in units where unit.inService && unit.size == size && (site == nil || unit.site == site) {
            var before = Self.noNeighbour, after = Self.noNeighbour, free = true
            for rental in rentals.values where rental.state == .assigned && rental.unit == unit.id && rental.id != ignoring {
                if rental.start < end && start < rental.end { free = false; break }
                if rental.end <= start { before = min(before, start - rental.end) }
                if rental.start >= end { after = min(after, rental.start - end) }
            }
            guard free else { continue }
            let score = before + after
            if best == nil || score < best!.score || (score == best!.score && unit.id < best!.id) { best = (score, unit.id) }
        }
        return best?.id
    }

    func isFree(_ unit: String, start: Int, end: Int, excluding: String) -> Bool {
        !rentals.values.contains { $0.state == .assigned && $0.unit == unit && $0.id != excluding && $0.start < end && start < $0.end }
    }

    /// The waiting requests, first come first served.
    var waiting: [Rental] { rentals.values.filter { $0.state == .waitlisted }.sorted { $0.waitSeq! < $1.waitSeq! } }

    /// Gives free capacity to waiting requests, oldest fitting first. Returns the promoted ids.
    mutating func promote() -> [String] {
        guard features.waitlist else { return [] }
        var promoted: [String] = []
        for waiting in waiting where waiting.start > today {
            guard let unit = bestUnit(size: waiting.size, site: waiting.site, start: waiting.start, end: waiting.end) else { continue }
            rentals[waiting.id]!.state = .assigned
            rentals[waiting.id]!.unit = unit
            rentals[waiting.id]!.waitSeq = nil
            promoted.append(waiting.id)
        }
        return promoted
    }

    mutating func submit(id: String, size: String, site: String?, start: Int, end: Int, waitlist: Bool) -> Decision {
        let site = features.sites ? site : nil
        var rental = Rental(id: id, size: size, site: site, start: start, end: end, state: .rejected, unit: nil)
        defer { rentals[id] = rental }
        if let unit = bestUnit(size: size, site: site, start: start, end: end) {
            rental.state = .assigned
            rental.unit = unit
            return .assigned(unit)
        }
        if features.waitlist, waitlist, start > today {
            rental.state = .waitlisted
            rental.waitSeq = nextSeq
            nextSeq += 1
            return .waitlisted
        }
        return .rejected
    }

    mutating func cancel(_ id: String) -> (Decision, [String]) {
        guard let rental = rentals[id] else { return (.noChange, []) }
        switch rental.state {
        case .assigned:
            rentals[id]!.state = .cancelled
            return (.cancelled, promote())
        case .waitlisted:
            rentals[id]!.state = .cancelled
            rentals[id]!.waitSeq = nil
            return (.cancelled, [])
        default:
            return (.noChange, [])
        }
    }

    /// Extends `id` to end on `day`: applied only when its unit is in service and free for the added days.
    mutating func extend(_ id: String, to day: Int) -> Decision {
        guard let rental = rentals[id], rental.state == .assigned, let unit = rental.unit else { return .refused }
        if day == rental.end { return .noChange }
        // An ended rental (its end today or earlier, not yet completed by the daily pass) is not extended.
        guard day > rental.end, rental.end > today, units.first(where: { $0.id == unit })?.inService == true,
              isFree(unit, start: rental.end, end: day, excluding: id) else { return .refused }
        rentals[id]!.end = day
        return .changed
    }

    /// Ends `id` early on `day` (the unit is free from `day`).
    mutating func end(_ id: String, on day: Int) -> (Decision, [String]) {
        guard let rental = rentals[id], rental.state == .assigned else { return (.refused, []) }
        if day == rental.end { return (.noChange, []) }
        guard day < rental.end, day > rental.start else { return (.refused, []) }
        rentals[id]!.end = day
        return (.changed, promote())
    }

    mutating func addUnit(_ unit: Unit) -> [String] {
        units.append(unit)
        return promote()
    }

    /// Changes an unheld unit's size and site (a unit holding an assigned rental is refused: nil).
    mutating func changeUnit(_ id: String, size: String, site: String) -> [String]? {
        guard let index = units.firstIndex(where: { $0.id == id }) else { return nil }
        if units[index].size == size && units[index].site == site { return [] }
        if rentals.values.contains(where: { $0.state == .assigned && $0.unit == id }) { return nil }
        units[index].size = size
        units[index].site = site
        return promote()
    }

    mutating func retire(_ id: String) {
        if let index = units.firstIndex(where: { $0.id == id }) { units[index].inService = false }
    }

    mutating func reinstate(_ id: String) -> [String] {
        if let index = units.firstIndex(where: { $0.id == id }) { units[index].inService = true }
        return promote()
    }

    /// A new day: rentals ended by it complete, waiting requests starting by it expire.
    mutating func advance(to day: Int) {
        today = day
        for (id, rental) in rentals {
            if rental.state == .assigned, rental.end <= day { rentals[id]!.state = .completed }
            if rental.state == .waitlisted, rental.start <= day, features.waitlist {
                rentals[id]!.state = .expired
                rentals[id]!.waitSeq = nil
            }
        }
    }
}
