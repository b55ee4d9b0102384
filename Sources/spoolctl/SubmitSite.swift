import Allocator
import Intake
import Rentals

extension Submit {
    /// Refuses (exit 65, nothing queued) a `--site` at which the inventory has no unit at all:
    /// a misspelt site would otherwise be rejected at best, and with `--waitlist` wait in vain
    /// until its start date. The inventory is read as `units list` reads it (read-only for a
    /// restricted caller); before the allocator has created its store nothing is checked (the
    /// allocator decides as for any request no unit fits). Units out of service count: a site
    /// whose units are all retired may get one back (`units reinstate`).
    static func requireKnownSite(_ site: String, _ global: GlobalOptions) throws {
        let store: AllocatorStore?
        // A store not ready for a read-only opening (exit 75 elsewhere) is not a reason to refuse a submit.
        do { store = try Units.readableStore(global).0 } catch let failure as Failure where failure.error.code == .tryAgain { return }
        guard let store, let units = try? store.units(), !units.isEmpty else { return }
        let sites = Set(units.map(\.site))
        guard !sites.contains(site) else { return }
        let known = sites.sorted().prefix(20).map(\.echoed).joined(separator: ", ")
        throw Failure(IntakeError(.badData, "--site \(site.echoed): no unit is at that site; the sites are \(known)"), json: global.json)
    }
}
