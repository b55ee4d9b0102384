import Foundation
import Intake
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The inventory through `spoolctl units`: adding never overwrites, changing is explicit and
/// never invalidates a rental, imports are all or nothing with every bad line reported
/// (issue 7, items 10 and 11).
@Suite(.serialized) struct InventoryTests {
    struct Unit: Decodable, Equatable {
        var id: String
        var size: String
        var site: String
    }

    func units(_ system: SystemFixture) throws -> [Unit] { try system.json([Unit].self, "units", "list") }

    func write(_ system: SystemFixture, _ name: String, _ text: String) throws -> String {
        let path = system.directory.sub(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func addingAnExistingIdIsRefusedAndChangesNothing() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        let again = try system.ctl("units", "add", "A-1", "--size", "XL")
        #expect(again.status == 65)
        #expect(again.errors.contains("A-1") && again.errors.contains("exists already"), "\(again.errors)")
        #expect(try units(system) == [Unit(id: "A-1", size: "M", site: "Site M")])
    }

    @Test func importingAnExistingIdOrAnIdTwiceIsRefusedWithTheLines() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        let existing = try write(system, "existing.csv", "id,size,site\nB-1,S,North\nA-1,XL,North\n")
        let result = try system.ctl("units", "import", existing)
        #expect(result.status == 65)
        #expect(result.errors.contains("existing.csv:3: unit A-1 exists already"), "\(result.errors)")
        let twice = try write(system, "twice.csv", "C-1,S,North\nC-2,M,North\nC-1,L,South\n")
        let duplicate = try system.ctl("units", "import", twice)
        #expect(duplicate.status == 65)
        #expect(duplicate.errors.contains("twice.csv:3: unit \"C-1\" is given twice (lines 1 and 3)"), "\(duplicate.errors)")
        // A duplicate of a line rejected for another reason is reported too.
        let both = try write(system, "both.csv", "D-1,HUGE,North\nD-1,S,North\n")
        let bothResult = try system.ctl("units", "import", both)
        #expect(bothResult.status == 65)
        #expect(bothResult.errors.contains("both.csv:1: unknown unit size") && bothResult.errors.contains("both.csv:2: unit \"D-1\" is given twice"),
                "\(bothResult.errors)")
        #expect(try units(system).map(\.id) == ["A-1"], "nothing imported")
    }

    @Test func everyRejectedLineIsReportedAndNothingImported() throws {
        let system = try SystemFixture()
        try system.addUnits([("OLD-1", "S")])
        let file = try write(system, "bad.csv", "id,size,site\nA-1,S,North\nOLD-1,M,North\nA-2,HUGE,North\nA-3\n../x,M,North\nA-4,M,North,extra\n")
        let result = try system.ctl("units", "import", file)
        #expect(result.status == 65)
        let lines = result.errors.split(separator: "\n").map(String.init)
        #expect(lines.count == 6, "\(result.errors)")
        for number in [3, 4, 5, 6, 7] { #expect(lines.contains { $0.contains("bad.csv:\(number): ") }, "line \(number): \(result.errors)") }
        #expect(lines.last?.contains("5 of 6 lines rejected") == true, "\(result.errors)")
        #expect(try units(system).map(\.id) == ["OLD-1"])
    }

    @Test func crlfBomAndQuotedFieldsImport() throws {
        let system = try SystemFixture()
        let file = try write(system, "excel.csv", "\u{FEFF}id,size,site\r\nA-1,S,\"Main Street 1, rear\"\r\n\"A-2\",m,\"Harbour \"\"Pier\"\" 7\"\r\n")
        let result = try system.ctl("units", "import", file)
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains("2 units added"))
        #expect(try units(system) == [Unit(id: "A-1", size: "S", site: "Main Street 1, rear"), Unit(id: "A-2", size: "M", site: "Harbour \"Pier\" 7")])
    }

    @Test func aQuotedFieldLeftOpenIsRefused() throws {
        let system = try SystemFixture()
        for (name, text) in [("open-end.csv", "A-1,S,\"Main Street\n"), ("open-middle.csv", "A-1,S,\"Main\nA-2,S,North\n"),
                             ("stray.csv", "A-1,S,Ma\"in\n")] {
            let result = try system.ctl("units", "import", try write(system, name, text))
            #expect(result.status == 65, "\(name): \(result.errors)")
            #expect(result.errors.contains("\(name)"), "\(name): \(result.errors)")
        }
        #expect(try units(system).isEmpty)
    }

    @Test func aFileWithoutUnitsIsRefused() throws {
        let system = try SystemFixture()
        for (name, text) in [("empty.csv", ""), ("header.csv", "id,size,site\r\n"), ("blank.csv", "\n\n")] {
            let result = try system.ctl("units", "import", try write(system, name, text))
            #expect(result.status == 65, "\(name): \(result.errors)")
            #expect(result.errors.contains("holds no units"), "\(name): \(result.errors)")
        }
    }

    @Test func aUnitHoldingARentalKeepsItsSizeAndSite() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M"), ("B-1", "S")])
        try system.start("spool-allocator")
        let id = try system.submit(size: "M", from: "2099-01-01", to: "2099-04-01")
        #expect(try system.waitFor(id, .assigned).unit == "A-1")
        for change in [["--size", "XL"], ["--site", "Elsewhere"]] {
            let refused = try system.ctl(["units", "change", "A-1"] + change)
            #expect(refused.status == 65, "\(change): \(refused.errors)")
            #expect(refused.errors.contains(id), "\(refused.errors)")
        }
        #expect(try units(system).first == Unit(id: "A-1", size: "M", site: "Site M"))
        // A unit without rentals changes; an unknown one is 66; a bad size is 65.
        #expect(try system.ctl("units", "change", "B-1", "--size", "L", "--site", "North").status == 0)
        #expect(try units(system).last == Unit(id: "B-1", size: "L", site: "North"))
        #expect(try system.ctl("units", "change", "NOPE", "--size", "L").status == 66)
        #expect(try system.ctl("units", "change", "B-1", "--size", "HUGE").status == 65)
        #expect(try system.ctl("units", "change", "B-1").status == 64)
        // Once the rental is cancelled, the unit may change.
        #expect(try system.ctl("cancel", id).status == 0)
        _ = try system.waitFor(id, .cancelled)
        #expect(try system.ctl("units", "change", "A-1", "--size", "XL").status == 0)
    }

    @Test func changeIsCheckedInTheSameTransactionAsTheRentals() throws {
        let (_, spool) = try makeSpool()
        let store = try AllocatorStore(spool: spool)
        let sizes = SystemConfiguration().sizes
        try store.addUnits([StorageUnit(id: "A-1", size: "M", site: "x")], sizes: sizes)
        #expect(throws: InventoryError.unitsExist(["A-1"])) { try store.addUnits([StorageUnit(id: "A-1", size: "S", site: "y")], sizes: sizes) }
        #expect(throws: InventoryError.duplicateUnit("B-1")) {
            try store.addUnits([StorageUnit(id: "B-1", size: "S", site: "y"), StorageUnit(id: "B-1", size: "M", site: "y")], sizes: sizes)
        }
        #expect(try store.units().map(\.id) == ["A-1"])
        #expect(try store.changeUnit("A-1", size: "s", site: nil, sizes: sizes).size == "S")
    }
}
