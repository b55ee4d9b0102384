// Fuzz targets for the rental domain: configuration files, unit import, dates and periods, the
// queue payloads the daemons decode, idempotency records and status documents.
import Foundation
import UnitImport
@testable import Allocator
@testable import Intake
@testable import Notifier
@testable import Rentals
@testable import Spool

extension FuzzTarget {
    /// `spool.conf` (`SystemConfiguration.apply`): an accepted file gives a configuration within
    /// the documented bounds, whose size classes can all be asked for, and which written back as
    /// a file reads back the same.
    static let configuration = FuzzTarget(name: "configuration", summary: "configuration files (spool.conf)") { input in
        var violations = Violations()
        var configuration = SystemConfiguration()
        guard (try? configuration.apply(input.fuzzText, file: "fuzz.conf")) != nil else { return [] }
        violations.expect(configuration.breakerLowWater < configuration.breakerHighWater, "breaker_low_water not below breaker_high_water")
        violations.expect(!configuration.sizes.isEmpty, "no size classes")
        for size in configuration.sizes {
            violations.expect(size.area > 0 && size.area.isFinite, "size \(fuzzQuoted(size.name)) has area \(size.area)")
            violations.expect(configuration.size(named: size.name) == size, "size \(fuzzQuoted(size.name)) cannot be asked for by its name")
        }
        violations.expect((configuration.alternateConfigFiles + configuration.alternateSpoolRoots).allSatisfy { $0.hasPrefix("/") }, "a relative alternate path")
        // One value per line: a value never swallows the lines after it.
        let values = [configuration.spoolRoot, configuration.maildirRoot, configuration.notifyHook, configuration.operatorGroup,
                      configuration.sender] + configuration.alternateConfigFiles + configuration.alternateSpoolRoots
        for value in values {
            violations.expect(!value.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }, "a value spans lines: \(fuzzQuoted(value))")
        }
        var again = SystemConfiguration()
        do { try again.apply(configurationText(configuration), file: "again.conf") } catch {
            violations.expect(false, "the configuration written back is refused: \(error)")
        }
        violations.expect(again == configuration, "the configuration written back reads differently")
        return violations.found
    }

    /// `spoolctl units import` files (`UnitFile`, CSV or JSON): entries are numbered in order;
    /// the valid units written back (CSV quoted, or JSON) import as the same units.
    static let unitImport = FuzzTarget(name: "unit-import", summary: "unit import files (CSV and JSON)") { input in
        var violations = Violations()
        guard let parsed = try? UnitFile(name: "fuzz", data: Data(input)).entries() else { return [] }
        let lines = parsed.entries.map(\.line)
        violations.expect(zip(lines, lines.dropFirst()).allSatisfy { $0 < $1 } && lines.allSatisfy { $0 >= 1 }, "entries out of order: \(lines.prefix(20))")
        if parsed.word == "entry" { violations.expect(lines == Array(1..<(lines.count + 1)), "JSON entries not numbered 1...n") }
        for entry in parsed.entries { violations.expect((entry.unit == nil) != (entry.problem == nil), "entry \(entry.line) is both or neither unit and problem") }
        let sizes = SizeClass.defaults + [SizeClass(name: "Q", area: 99)]
        let valid = parsed.entries.compactMap(\.unit).filter { (try? InventoryError.validate($0, sizes: sizes)) != nil }
        guard !valid.isEmpty else { return violations.found }
        let text: String
        if parsed.word == "entry" {
            let objects = valid.map { ["id": $0.id, "size": $0.size, "site": $0.site] }
            text = String(decoding: (try? JSONSerialization.data(withJSONObject: objects)) ?? Data(), as: UTF8.self)
        } else {
            func quoted(_ field: String) -> String { "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            text = "id,size,site\n" + valid.map { [$0.id, $0.size, $0.site].map(quoted).joined(separator: ",") + "\n" }.joined()
        }
        let again = (try? UnitFile(name: "again", data: Data(text.utf8)).entries())?.entries.compactMap(\.unit)
        violations.expect(again == valid, "valid units written back import as \(fuzzQuoted(again as Any)), not \(fuzzQuoted(valid))")
        return violations.found
    }

    /// Dates, timestamps and the rental form: `CalendarDay(iso:)` accepts exactly its own
    /// `description`; timestamps survive their text form; an accepted form's period starts
    /// today or later, ends after it starts and within the maximum length.
    static let dates = FuzzTarget(name: "dates", summary: "dates, periods, timestamps and rental forms") { input in
        var violations = Violations()
        let fields = input.fuzzFields().map(\.fuzzText)
        func field(_ index: Int) -> String? { index < fields.count ? fields[index] : nil }
        for text in fields.prefix(8) {
            if let day = CalendarDay(iso: text) {
                violations.expect(day.description == text, "\(fuzzQuoted(text)) is read as \(day)")
                let (year, month, dayOfMonth) = day.components
                violations.expect(CalendarDay(year: year, month: month, day: dayOfMonth) == day, "components of \(day) do not make it again")
                if let months = Int(field(1) ?? "") { _ = day.adding(months: months) }
            }
            if let stamp = Timestamp(rfc3339: text) {
                violations.expect(Timestamp(rfc3339: stamp.description) == stamp, "timestamp \(fuzzQuoted(text)) does not survive its text form \(stamp)")
            }
        }
        guard fields.count >= 5 else { return violations.found }
        let today = CalendarDay(year: 2027, month: 1, day: 1)!
        var configuration = SystemConfiguration()
        configuration.maxPeriodMonths = Int(field(7) ?? "").map { min(max($0, 1), 1200) } ?? 36
        let form = RentalForm(customer: fields[0], contact: fields[1], size: fields[2], from: fields[3],
                              to: fields[4].isEmpty ? nil : fields[4], months: field(5).flatMap { Int($0) },
                              idempotencyKey: field(6).flatMap { $0.isEmpty ? nil : $0 })
        if let valid = try? form.validate(configuration, today: today) {
            violations.expect(valid.period.start >= today, "a period starting before today is accepted")
            violations.expect(valid.period.start < valid.period.end, "an empty period is accepted")
            if let limit = valid.period.start.adding(months: configuration.maxPeriodMonths) {
                violations.expect(valid.period.end <= limit, "a period over \(configuration.maxPeriodMonths) months is accepted")
            }
            violations.expect(RentalForm.isCustomer(valid.customer) && configuration.sizes.contains(valid.size), "an invalid customer or size is accepted")
        }
        return violations.found
    }

    /// What the daemons decode from the queues and records: allocation commands (allocator),
    /// customer notifications (notifier), requests (idempotency records), the breaker's and the
    /// allocator's health records. Each decoded value survives encode/decode, holds a valid
    /// period, and a notification renders to a message whose header nobody can add to.
    static let queuePayloads = FuzzTarget(name: "queue-payloads", summary: "queue payloads, idempotency and state records (JSON)") { input in
        var violations = Violations()
        let data = Data(input)
        func roundTrip<T: Codable & Equatable>(_ type: T.Type) -> T? {
            guard let value = try? JSONDecoder().decode(T.self, from: data) else { return nil }
            let again = (try? JSONEncoder().encode(value)).flatMap { try? JSONDecoder().decode(T.self, from: $0) }
            violations.expect(again == value, "\(T.self) does not survive encode/decode: \(fuzzQuoted(value))")
            return value
        }
        func checkRequest(_ request: RentalRequest, _ what: String) {
            violations.expect(request.period.start < request.period.end, "\(what) decoded with an empty or inverted period \(request.period)")
            let status = RentalStatus(received: request)
            violations.expect(RentalStatus(document: status.indexEvent().document) == status, "status of \(what) does not survive its document")
        }
        if let command = roundTrip(AllocationCommand.self), let request = command.request { checkRequest(request, "allocation command") }
        if let request = roundTrip(RentalRequest.self) { checkRequest(request, "idempotency record") }
        if let notification = roundTrip(CustomerNotification.self) {
            checkRequest(notification.request, "notification")
            let message = MessageRenderer.render(notification, sender: SystemConfiguration().sender, date: notification.decidedAt)
            checkHeader(message, &violations)
        }
        _ = roundTrip(AllocatorHealth.self)
        _ = roundTrip(AdmissionControl.State.self)
        return violations.found
    }

    /// Status documents as the index and `spoolctl status` read them (`RentalStatus(document:)`):
    /// a decoded status survives its canonical text.
    static let statusDocument = FuzzTarget(name: "status-document", summary: "status documents of the index") { input in
        var violations = Violations()
        if let status = RentalStatus(document: input.fuzzText) {
            violations.expect(RentalStatus(document: status.jsonText()) == status, "status does not survive its document: \(fuzzQuoted(status.jsonText()))")
            _ = status.indexEvent()
        }
        return violations.found
    }
}

/// The header of a rendered message: 7-bit, printable, each line a known field or a
/// continuation, each field once.
func checkHeader(_ message: String, _ violations: inout Violations) {
    let known: Set<String> = ["From", "To", "Subject", "Date", "Message-ID", "X-Request-ID", "X-Notification-Kind",
                              "X-Contact-Phone", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]
    guard let end = message.range(of: "\n\n") else { return violations.expect(false, "message without a header/body separator") }
    var seen: Set<String> = []
    for line in message[..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
        violations.expect(line.utf8.allSatisfy { (0x20...0x7E).contains($0) }, "header line with a control or 8-bit byte: \(fuzzQuoted(line))")
        violations.expect(line.utf8.count <= 998, "header line over 998 bytes")
        if line.hasPrefix(" ") { continue }
        let name = line.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        violations.expect(known.contains(name) && seen.insert(name).inserted, "unexpected or repeated header line \(fuzzQuoted(line))")
    }
}

/// `configuration` written as a `spool.conf` file.
func configurationText(_ configuration: SystemConfiguration) -> String {
    let c = configuration
    return """
    spool_root = \(c.spoolRoot)
    sizes = \(c.sizes.map { "\($0.name):\($0.area)" }.joined(separator: ", "))
    max_period_months = \(c.maxPeriodMonths)
    breaker_high_water = \(c.breakerHighWater)
    breaker_low_water = \(c.breakerLowWater)
    breaker_cooldown_seconds = \(c.breakerCooldownSeconds)
    breaker_failure_threshold = \(c.breakerFailureThreshold)
    allocator_max_workers = \(c.allocatorMaxWorkers)
    notifier_max_workers = \(c.notifierMaxWorkers)
    max_attempts = \(c.maxAttempts)
    maildir_root = \(c.maildirRoot)
    notify_hook = \(c.notifyHook)
    hook_timeout_seconds = \(c.hookTimeoutSeconds)
    operator_group = \(c.operatorGroup)
    sender = \(c.sender)
    alternate_config_files = \(c.alternateConfigFiles.joined(separator: ", "))
    alternate_spool_roots = \(c.alternateSpoolRoots.joined(separator: ", "))

    """
}
