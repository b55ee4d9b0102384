import Rentals

/// The assignment rule, as pure functions over the inventory and its holdings.
///
/// **Best fit.** Among in-service units of the requested size that are free for every day of
/// the period, choose the one that leaves the least idle time around the new rental: the score
/// is the gap (in days) between the unit's previous rental and the new start, plus the gap
/// between the new end and the unit's next rental; a side with no rental counts 100,000 days.
/// The lowest score wins, then the lowest unit id. Rentals thus fill gaps and pack onto units
/// already in use, and untouched units stay whole for long rentals: the calendar stays
/// unfragmented, and the choice is deterministic.
///
/// **Alternatives** (on rejection): the nearest other size free for the whole period (larger
/// sizes first, by floor area, then smaller ones), and the earliest start within a year after the
/// requested one at which a unit of the requested size is free for a period of the same length.
public enum BestFit {
    /// A unit with the periods it holds.
    public struct Candidate: Sendable {
        /// The unit.
        public var unit: StorageUnit
        /// The periods it is rented for.
        public var holdings: [RentalPeriod]

        /// A candidate.
        public init(unit: StorageUnit, holdings: [RentalPeriod]) {
            self.unit = unit
            self.holdings = holdings
        }
    }

    static let noNeighbour = 100_000

    /// The unit to assign for `period`, or nil if none of `candidates` is free.
    public static func choose(for period: RentalPeriod, among candidates: [Candidate]) -> StorageUnit? {
        var best: (score: Int, unit: StorageUnit)?
        for candidate in candidates where candidate.unit.inService {
            guard let score = score(period, candidate.holdings) else { continue }
            if best == nil || score < best!.score || (score == best!.score && candidate.unit.id < best!.unit.id) {
                best = (score, candidate.unit)
            }
        }
        return best?.unit
    }

    /// The idle-gap score of placing `period` among `holdings`, or nil on overlap.
    static func score(_ period: RentalPeriod, _ holdings: [RentalPeriod]) -> Int? {
        var before = noNeighbour, after = noNeighbour
        for held in holdings {
            if held.overlaps(period) { return nil }
            if held.end <= period.start { before = min(before, period.start.daysSinceEpoch - held.end.daysSinceEpoch) }
            if held.start >= period.end { after = min(after, held.start.daysSinceEpoch - period.end.daysSinceEpoch) }
        }
        return before + after
    }

    /// The earliest start in `[period.start, period.start + horizonDays]` at which some unit of
    /// `candidates` is free for `period.days` days. Candidate starts are the requested start and
    /// every end of a holding after it.
    public static func earliestStart(for period: RentalPeriod, among candidates: [Candidate], horizonDays: Int = 365) -> CalendarDay? {
        let limit = period.start.adding(days: horizonDays)
        var starts = Set([period.start])
        for candidate in candidates where candidate.unit.inService {
            for held in candidate.holdings where held.end > period.start && held.end <= limit { starts.insert(held.end) }
        }
        for start in starts.sorted() {
            guard let shifted = RentalPeriod(start: start, end: start.adding(days: period.days)) else { continue }
            if choose(for: shifted, among: candidates) != nil { return start }
        }
        return nil
    }

    /// The order in which other sizes are offered: larger by area first, then smaller.
    public static func alternativeSizes(to size: String, in classes: [SizeClass]) -> [String] {
        guard let own = classes.first(where: { $0.name == size }) else { return [] }
        let larger = classes.filter { $0.area > own.area }.sorted { $0.area < $1.area }
        let smaller = classes.filter { $0.area < own.area }.sorted { $0.area > $1.area }
        return (larger + smaller).map(\.name)
    }
}
