import Allocator
import ArgumentParser
import DaemonRuntime
import Foundation
import Intake
import Rentals
import Spool
import UnitImport

struct Units: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "units",
        abstract: "Manage the inventory of storage units.",
        subcommands: [Add.self, Change.self, Import.self, ListUnits.self, Retire.self, Reinstate.self])

    /// The allocator's store of the configured spool, for an operator.
    static func store(_ global: GlobalOptions, operatorAction: String?) throws -> (AllocatorStore, SystemConfiguration) {
        let configuration = try global.configuration()
        if let operatorAction { try global.requireOperator(global.caller(configuration), to: operatorAction) }
        do {
            let spool = try Spool(path: configuration.spoolRoot, create: true)
            return (try AllocatorStore(spool: spool), configuration)
        } catch {
            throw Failure(IntakeError.mapping(error, doing: "opening the inventory", spoolRoot: configuration.spoolRoot), json: global.json)
        }
    }

    /// The store for reading the inventory. In restricted mode it is opened read-only (nil when
    /// the allocator has not created it yet): a caller who stops spoolctl then holds no lock the
    /// allocator or an operator waits for, and nothing was written.
    static func readableStore(_ global: GlobalOptions) throws -> (AllocatorStore?, SystemConfiguration) {
        guard SpoolProcess.isRestricted else {
            let (store, configuration) = try store(global, operatorAction: nil)
            return (store, configuration)
        }
        let configuration = try global.configuration()
        do {
            let spool = try Spool(path: configuration.spoolRoot, create: true)
            let path = try spool.directoryPath("allocator") + "/state.sqlite"
            guard FileManager.default.fileExists(atPath: path) else { return (nil, configuration) }
            try StoreReader.requireSidecars(of: path)  // else SQLite makes -wal/-shm owned by the caller
            return (try AllocatorStore(spool: spool, readOnly: true), configuration)
        } catch let notReady as StoreReader.NotReady {
            throw Failure(IntakeError(.tryAgain, "\(notReady)", retryAfterSeconds: 1), json: global.json)
        } catch {
            throw Failure(IntakeError.mapping(error, doing: "opening the inventory", spoolRoot: configuration.spoolRoot), json: global.json)
        }
    }

    /// The exit code of an inventory refusal: 66 for an unknown unit, 65 for the rest.
    static func failure(_ error: InventoryError, _ global: GlobalOptions, details: [String] = []) -> Failure {
        if case .unknownUnit = error { return Failure(IntakeError(.noInput, error.description), json: global.json) }
        return Failure(IntakeError(.badData, error.description), json: global.json, details: details)
    }

    static func add(_ units: [StorageUnit], _ global: GlobalOptions) throws {
        let (store, configuration) = try store(global, operatorAction: "change the inventory")
        let promotion = WaitlistPromotion(units: units.map(\.id), configuration: configuration)
        do { try store.addUnits(units, sizes: configuration.sizes, afterChange: promotion.hook) } catch let error as InventoryError {
            throw failure(error, global)
        } catch {
            throw Failure(IntakeError.mapping(error, doing: "updating the inventory", spoolRoot: configuration.spoolRoot), json: global.json)
        }
        if global.json { try printJSON(units) } else { try emit("\(units.count) unit\(units.count == 1 ? "" : "s") added" + promotedText(promotion)) }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a new unit (an id in the inventory already is refused: see units change).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Unit id, e.g. A-101.") var id: String
        @Option(help: "Size class.") var size: String
        @Option(help: "Site name.") var site = "main"

        func run() throws {
            try global.requireOperator(to: "change the inventory")
            try Units.add([StorageUnit(id: id, size: size.uppercased(), site: site)], global)
        }
    }

    struct Change: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "change",
            abstract: "Change a unit's size or site; refused (exit 65) while it holds a current or future rental.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Unit id.") var id: String
        @Option(help: "New size class.") var size: String?
        @Option(help: "New site name.") var site: String?

        func validate() throws {
            guard size != nil || site != nil else { throw ValidationError("give --size, --site or both") }
        }

        func run() throws {
            let (store, configuration) = try Units.store(global, operatorAction: "change the inventory")
            let unit: StorageUnit
            let promotion = WaitlistPromotion(units: [id], configuration: configuration)
            do { unit = try store.changeUnit(id, size: size, site: site, sizes: configuration.sizes, afterChange: promotion.hook) } catch let error as InventoryError {
                throw Units.failure(error, global)
            } catch {
                throw Failure(IntakeError.mapping(error, doing: "changing unit \(id.echoed)", spoolRoot: configuration.spoolRoot), json: global.json)
            }
            if global.json { try printJSON(unit) } else { try emit("unit \(unit.id): size \(unit.size), site \(visible(unit.site))" + Units.promotedText(promotion)) }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Add new units from a CSV file (id,size[,site] per line; a header line is allowed) or a JSON array of {id, size, site}.",
            discussion: """
                All or nothing: every line is checked (a bad size or id, a wrong number of fields, an id \
                given twice in the file or in the inventory already) and each rejected line is reported with \
                its number; if any is rejected, nothing is imported (exit 65). A file without units is \
                refused too. CSV: UTF-8 with or without a byte order mark, LF or CRLF line endings, fields \
                may be quoted.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The file.") var file: String

        func run() throws {
            try global.requireOperator(to: "change the inventory")
            guard let data = Caller.readFileAsRealUser(file).map({ Data($0) }) else {
                throw Failure(IntakeError(.noInput, "cannot read \(file.echoed)"), json: global.json)
            }
            let parsed: (entries: [UnitFile.Entry], word: String)
            do { parsed = try UnitFile(name: file.shortened, data: data).entries() } catch { throw Failure(error, json: global.json) }
            try importing(parsed.entries, word: parsed.word)
        }

        /// Checks every entry, then adds them all in one transaction, or reports every rejected one.
        func importing(_ entries: [UnitFile.Entry], word: String) throws {
            let (store, configuration) = try Units.store(global, operatorAction: "change the inventory")
            guard !entries.isEmpty else {
                throw Failure(IntakeError(.badData, "\(file.echoed) holds no units; nothing imported"), json: global.json)
            }
            var rejected: [(line: Int, message: String)] = []
            var seen: [String: Int] = [:]  // every id given, valid or not: its first line
            var firstLine: [String: Int] = [:]  // the valid ones
            for entry in entries {
                if let message = entry.problem { rejected.append((entry.line, message)); continue }
                let unit = entry.unit!
                if let earlier = seen[unit.id] {
                    rejected.append((entry.line, "unit \(unit.id.echoed) is given twice (\(word)s \(earlier) and \(entry.line))"))
                    continue
                }
                seen[unit.id] = entry.line
                do { try InventoryError.validate(unit, sizes: configuration.sizes) } catch {
                    rejected.append((entry.line, "\(error)"))
                    continue
                }
                firstLine[unit.id] = entry.line
            }
            let existing: Set<String>
            do { existing = try store.existingUnitIDs(among: Array(firstLine.keys)) } catch {
                throw Failure(IntakeError.mapping(error, doing: "reading the inventory", spoolRoot: configuration.spoolRoot), json: global.json)
            }
            for id in existing { rejected.append((firstLine[id]!, "unit \(id) exists already (change it with spoolctl units change)")) }
            let promotion = WaitlistPromotion(units: entries.compactMap(\.unit?.id), configuration: configuration)
            if rejected.isEmpty {
                do {
                    try store.addUnits(entries.compactMap(\.unit), sizes: configuration.sizes, afterChange: promotion.hook)
                } catch let error as InventoryError {
                    guard case .unitsExist(let ids) = error else { throw Units.failure(error, global) }
                    rejected = ids.compactMap { id in firstLine[id].map { ($0, "unit \(id) exists already (change it with spoolctl units change)") } }
                } catch {
                    throw Failure(IntakeError.mapping(error, doing: "updating the inventory", spoolRoot: configuration.spoolRoot), json: global.json)
                }
            }
            guard rejected.isEmpty else {
                let details = rejected.sorted { $0.line < $1.line }.map { "\(file.shortened):\($0.line): \($0.message)" }
                throw Failure(IntakeError(.badData, "\(rejected.count) of \(entries.count) \(word)s rejected in \(file.echoed); nothing imported"),
                              json: global.json, details: details)
            }
            let units = entries.compactMap(\.unit)
            if global.json { try printJSON(units) } else { try emit("\(units.count) unit\(units.count == 1 ? "" : "s") added" + Units.promotedText(promotion)) }
        }
    }

    struct ListUnits: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the units.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let (store, configuration) = try Units.readableStore(global)
            let units: [StorageUnit]
            do { units = try store?.units() ?? [] } catch {
                throw Failure(IntakeError.mapping(error, doing: "reading the inventory", spoolRoot: configuration.spoolRoot), json: global.json)
            }
            if global.json { try printJSON(units); return }
            guard !units.isEmpty else { try emit("no units"); return }
            try emit(Table(headers: ["UNIT", "SIZE", "SITE", "IN SERVICE"],
                        rows: units.map { [$0.id, $0.size, visible($0.site), $0.inService ? "yes" : "retired"] }).render())
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "retire", abstract: "Take a unit out of service; its existing rentals stand.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Unit id.") var id: String

        func run() throws {
            try global.requireOperator(to: "change the inventory")
            let (store, _) = try Units.store(global, operatorAction: "change the inventory")
            do { try store.retireUnit(id) } catch let error as InventoryError {
                throw Units.failure(error, global)
            } catch {
                throw Failure(IntakeError.mapping(error, doing: "retiring \(id.echoed)"), json: global.json)
            }
            if global.json { try printJSONObject(["id": id, "in_service": false]) } else { try emit("unit \(id) retired") }
        }
    }
}

