// A process for the retention pruning's SIGKILL tests: runs one pruning of a spool and prints
// its counts as JSON.
//
//     spool-prune-driver <spool> <retention-days> <now-ms> <chunk> <pause-µs>
//
// Every durable step is preceded by a pause of <pause-µs>, so that a SIGKILL sent at a random
// moment lands between (and inside) the steps of a run over a small spool.
import Allocator
import Foundation
import Logging
import Rentals
import Spool

let arguments = CommandLine.arguments
guard arguments.count == 6, let days = Int(arguments[2]), let now = Int64(arguments[3]),
      let chunk = Int(arguments[4]), let pause = UInt32(arguments[5]) else {
    FileHandle.standardError.write(Data("usage: spool-prune-driver <spool> <retention-days> <now-ms> <chunk> <pause-µs>\n".utf8))
    exit(64)
}
do {
    let spool = try Spool(path: arguments[1])
    var configuration = SystemConfiguration()
    configuration.spoolRoot = arguments[1]
    configuration.retentionDays = days
    let report = try RetentionPruning.prune(spool: spool, configuration: configuration, now: Timestamp(milliseconds: now), dryRun: false,
                                            logger: Logger(label: "prune-driver"), chunk: chunk, beforeStep: { _ in usleep(pause) })
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    print(String(decoding: try encoder.encode(report), as: UTF8.self))
} catch {
    FileHandle.standardError.write(Data("prune failed: \(error)\n".utf8))
    exit(74)
}
