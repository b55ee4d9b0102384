import Allocator
import ArgumentParser
import Foundation
import Intake
import Spool

struct Units: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the inventory of storage units.",
        subcommands: [Add.self, Import.self, ListUnits.self, Retire.self])

    /// The allocator's store of the configured spool, for an operator.
    static func store(_ global: GlobalOptions, operatorAction: String?) throws -> (AllocatorStore, SystemConfiguration) {
        let configuration = try global.configuration()
        if let operatorAction { try global.requireOperator(global.caller(configuration), to: operatorAction) }
        do {
            let spool = try Spool(path: configuration.spoolRoot, create: true)
            return (try AllocatorStore(spool: spool), configuration)
        } catch let error as SpoolError {
            throw Failure(IntakeError(error, doing: "opening the inventory"), json: global.json)
        } catch {
            throw Failure(IntakeError(.ioError, "opening the inventory: \(error)"), json: global.json)
        }
    }

    static func add(_ units: [StorageUnit], _ global: GlobalOptions) throws {
        let (store, configuration) = try store(global, operatorAction: "change the inventory")
        do { try store.addUnits(units, sizes: configuration.sizes) } catch let error as InventoryError {
            throw Failure(IntakeError(.badData, error.description), json: global.json)
        } catch {
            throw Failure(IntakeError(.ioError, "updating the inventory: \(error)"), json: global.json)
        }
        if global.json { printJSON(units) } else { print("\(units.count) unit\(units.count == 1 ? "" : "s") added") }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a unit (or change its size and site).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Unit id, e.g. A-101.") var id: String
        @Option(help: "Size class.") var size: String
        @Option(help: "Site name.") var site = "main"

        func run() throws {
            try global.requireOperator(to: "change the inventory")
            try Units.add([StorageUnit(id: id, size: size.uppercased(), site: site)], global)
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add units from a CSV file (id,size,site per line; a header line is allowed) or a JSON array of {id, size, site}.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The file.") var file: String

        func run() throws {
            try global.requireOperator(to: "change the inventory")
            guard let data = Caller.readFileAsRealUser(file).map({ Data($0) }) else {
                throw Failure(IntakeError(.noInput, "cannot read \(file)"), json: global.json)
            }
            try Units.add(try parse(data), global)
        }

        func parse(_ data: Data) throws -> [StorageUnit] {
            if data.first(where: { !$0.isWhitespaceByte }) == UInt8(ascii: "[") {
                struct Entry: Decodable { var id: String; var size: String; var site: String? }
                guard let entries = try? JSONDecoder().decode([Entry].self, from: data) else {
                    throw Failure(IntakeError(.badData, "\(file) is not a JSON array of {\"id\", \"size\", \"site\"}"), json: global.json)
                }
                return entries.map { StorageUnit(id: $0.id, size: $0.size.uppercased(), site: $0.site ?? "main") }
            }
            var units: [StorageUnit] = []
            for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
                let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                if number == 0 && fields.first?.lowercased() == "id" { continue }
                if fields.allSatisfy(\.isEmpty) { continue }
                guard fields.count == 2 || fields.count == 3 else {
                    throw Failure(IntakeError(.badData, "\(file):\(number + 1): expected id,size,site"), json: global.json)
                }
                units.append(StorageUnit(id: fields[0], size: fields[1].uppercased(), site: fields.count == 3 ? fields[2] : "main"))
            }
            return units
        }
    }

    struct ListUnits: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the units.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let (store, _) = try Units.store(global, operatorAction: nil)
            let units = try global.reporting { try store.units() }
            if global.json { printJSON(units); return }
            guard !units.isEmpty else { print("no units"); return }
            print(Table(headers: ["UNIT", "SIZE", "SITE", "IN SERVICE"],
                        rows: units.map { [$0.id, $0.size, $0.site, $0.inService ? "yes" : "retired"] }).render())
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a unit out of service; its existing rentals stand.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Unit id.") var id: String

        func run() throws {
            try global.requireOperator(to: "change the inventory")
            let (store, _) = try Units.store(global, operatorAction: "change the inventory")
            do { try store.retireUnit(id) } catch let error as InventoryError {
                throw Failure(IntakeError(.noInput, error.description), json: global.json)
            } catch {
                throw Failure(IntakeError(.ioError, "retiring \(id): \(error)"), json: global.json)
            }
            if global.json { printJSONObject(["id": id, "in_service": false]) } else { print("unit \(id) retired") }
        }
    }
}

extension UInt8 {
    var isWhitespaceByte: Bool { self == 0x20 || self == 0x09 || self == 0x0A || self == 0x0D }
}
