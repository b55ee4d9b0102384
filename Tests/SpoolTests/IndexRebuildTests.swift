import Foundation
import Testing
@testable import Spool

/// The rebuild gathers events in a window before writing them (issue 9): whatever the order,
/// repetition and spread of the events (within one window or across several), the rebuilt index
/// is the journal's projection by the version rule, equal to the in-memory scan and to a
/// catch-up that applies the events one batch at a time.
@Suite struct IndexRebuildTests {
    @Test(arguments: [1, 2]) func rebuildEqualsTheScanAndACatchUp(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(seed) &+ 500)
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let entities = StatusIndex.projectionWindow + 3_000
        var events: [IndexEvent] = []
        for index in 0..<entities {
            for _ in 0..<Int.random(in: 1...2, using: &generator) {
                let version = Int64.random(in: 1...4, using: &generator)
                // Equal versions with different documents (é sorts after z as bytes).
                let document = ["{\"v\":\(version),\"d\":\"z\"}", "{\"v\":\(version),\"d\":\"é\"}"].randomElement(using: &generator)!
                events.append(IndexEvent(entity: "e\(index)", version: version, state: "s\(version)", at: Int64(index),
                                         keys: ["k": "\(index % 13)", "v": "\(version)"], document: document))
            }
        }
        // Mostly in order, with some events of an entity far from the others (another window).
        for _ in 0..<2_000 { events.swapAt(Int.random(in: 0..<events.count, using: &generator), Int.random(in: 0..<events.count, using: &generator)) }
        for start in stride(from: 0, to: events.count, by: 1_000) {
            try journal.append(events[start..<min(start + 1_000, events.count)].map { $0.encoded() }, durability: .buffered)
        }
        try journal.sync()

        let index = try StatusIndex(spool: spool)
        try index.rebuild(from: journal)
        let rebuilt = try index.dump()
        let scanned = try StatusIndex.scan(journal).values.sorted { $0.entity.utf8.lexicographicallyPrecedes($1.entity.utf8) }
        #expect(rebuilt.count == entities)
        #expect(rebuilt == scanned)

        let caughtUp = try StatusIndex(path: directory.sub("caught-up.sqlite"))
        try caughtUp.catchUp(from: journal, batchSize: 777)
        #expect(try caughtUp.dump() == rebuilt)
        // The keys table follows the rows.
        #expect(try index.entities(key: "k", value: "5", limit: 100_000).count == (0..<entities).filter { $0 % 13 == 5 }.count)
    }
}

/// The fast event reader never disagrees with `JSONDecoder`: on what `encoded()` writes it reads
/// the same event (or leaves it to `JSONDecoder`), and on any damaged or foreign text it reads
/// nothing that `JSONDecoder` would not read the same way.
@Suite struct IndexEventParserTests {
    private func decoded(_ bytes: [UInt8]) -> IndexEvent? { try? JSONDecoder().decode(IndexEvent.self, from: Data(bytes)) }

    @Test func agreesWithJSONDecoderOnEncodedAndDamagedEvents() {
        var generator = SeededGenerator(seed: 4242)
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", "9", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{7f}", "é", "€", "😀", " ", "{", "}", ":", ",", "["]
        func text() -> String {
            var value = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...10, using: &generator) { value.append(alphabet.randomElement(using: &generator)!) }
            return String(value)
        }
        var fast = 0
        for _ in 0..<3_000 {
            var keys: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...3, using: &generator) { keys[text()] = text() }
            let event = IndexEvent(entity: text(), version: Int64.random(in: Int64.min...Int64.max, using: &generator),
                                   state: text(), at: Int64.random(in: -5...Int64.max, using: &generator), keys: keys, document: text())
            let bytes = event.encoded()
            if let parsed = IndexEventParser.parse(bytes) {
                fast += 1
                #expect(parsed == event)
            }
            #expect(decoded(bytes) == event)
            // Damage: a flipped bit, a byte inserted or removed, a cut.
            var damaged = bytes
            let offset = Int.random(in: 0..<damaged.count, using: &generator)
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: damaged[offset] ^= UInt8(1 << Int.random(in: 0..<8, using: &generator))
            case 1: damaged.insert([UInt8(ascii: " "), UInt8(ascii: ","), UInt8(ascii: "0"), UInt8(ascii: "\""), UInt8(ascii: "."), 0xff].randomElement(using: &generator)!, at: offset)
            case 2: damaged.remove(at: offset)
            default: damaged = Array(damaged.prefix(offset))
            }
            if let parsed = IndexEventParser.parse(damaged) { #expect(decoded(damaged) == parsed, "\(String(decoding: damaged, as: UTF8.self))") }
        }
        #expect(fast > 500, "the fast path read only \(fast) of 3,000 events")
        // Forms `encoded()` never writes but another writer may: whitespace, any key order.
        let spaced = Array(#" { "version" : 2 , "keys" : { "k" : "v" } , "at" : -0 , "state" : "s" , "entity" : "e\/1" , "document" : "{}" } "#.utf8)
        #expect(IndexEventParser.parse(Array(spaced.dropFirst())) == decoded(Array(spaced.dropFirst())))
        #expect(IndexEventParser.parse(Array(spaced.dropFirst()))?.entity == "e/1")
        for foreign in [#"{"entity":"e","version":1.0,"state":"s","at":1,"keys":{},"document":"{}"}"#,
                        #"{"entity":"e","version":1,"state":"s","at":1,"keys":{},"document":"{}","extra":true}"#,
                        #"{"entity":"\u0065","version":1,"state":"s","at":1,"keys":{},"document":"{}"}"#,
                        #"{"entity":"e","version":01,"state":"s","at":1,"keys":{},"document":"{}"}"#,
                        #"{"entity":"e","entity":"f","version":1,"state":"s","at":1,"keys":{},"document":"{}"}"#] {
            #expect(IndexEventParser.parse(Array(foreign.utf8)) == nil, "\(foreign)")
        }
        #expect(IndexEvent.decode(Array(#"{"entity":"\u0065","version":1,"state":"s","at":1,"keys":{},"document":"{}"}"#.utf8))?.entity == "e")
    }
}
