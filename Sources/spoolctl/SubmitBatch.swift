import Foundation
import Intake
import Rentals

/// `spoolctl submit --batch FILE`: reads the batch (FILE with the caller's own rights, or
/// standard input for `-`), submits it (see `IntakeService.submitBatch`) and prints one result
/// per request line.
///
/// Output: a table `LINE  ID  RESULT`, or with `--json` ONE JSON array, in line order, of
/// `{"line", "id", "created", "state": "received"}` for an accepted line and `{"line", "error",
/// "exit_code"}` for a refused one. Exit 0 when every line was accepted; 65 when any was refused
/// (the others are queued; the array is printed all the same, and the summary goes to stderr);
/// a failure of the whole batch (64 usage or empty, 65 over the limits, 66 unreadable file, 75
/// breaker open, 74/77) prints the usual error and queues nothing.
struct SubmitBatch {
    let global: GlobalOptions
    let path: String

    func run() throws {
        let bytes = try global.reporting { try BatchFile.read(path) }
        let (intake, caller) = try global.intake()
        let receipt = try global.reporting { try intake.submitBatch(bytes, caller: caller) }
        do {
            if global.json { try emit(Self.json(receipt)) } else { try emit(Self.table(receipt)) }
        } catch let failure as Failure where failure.error.code == .ioError {
            let queued = receipt.lines.count - receipt.refused
            throw Failure(IntakeError(.ioError, "\(queued) request\(queued == 1 ? "" : "s") of batch \(receipt.batch ?? "-") queued, but \(failure.error.message); spoolctl list shows them, and submitting again with the same idempotency keys returns them"),
                          json: false)
        }
        let refused = receipt.refused
        guard refused > 0 else { return }
        let accepted = receipt.lines.count - refused
        let name = path == "-" ? "stdin" : path.shortened
        let details = receipt.lines.compactMap { line -> String? in
            guard case .refused(let error) = line.outcome else { return nil }
            return "\(name):\(line.line): \(error.message)"
        }
        throw Failure(IntakeError(.badData, "\(refused) of \(receipt.lines.count) request lines refused; \(accepted == 0 ? "nothing was queued" : "the \(accepted) accepted are queued")"),
                      json: false, details: details)
    }

    static func table(_ receipt: BatchReceipt) -> String {
        var table = Table(headers: ["LINE", "ID", "RESULT"])
        for line in receipt.lines {
            switch line.outcome {
            case .accepted(let id, let created):
                table.rows.append([String(line.line), id, created ? "accepted" : "already submitted with this key"])
            case .refused(let error):
                table.rows.append([String(line.line), "-", "refused: \(error.message)"])
            }
        }
        return table.render()
    }

    static func json(_ receipt: BatchReceipt) -> String {
        let objects: [[String: Any]] = receipt.lines.map { line in
            switch line.outcome {
            case .accepted(let id, let created):
                return ["line": line.line, "id": id, "created": created, "state": "received"]
            case .refused(let error):
                return ["line": line.line, "error": error.message, "exit_code": Int(error.code.rawValue)]
            }
        }
        return jsonText(objects)
    }
}
