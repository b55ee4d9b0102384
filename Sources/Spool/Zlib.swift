import CZlib

/// Whole-buffer zlib (RFC 1950) compression through the system `libz`.
enum Zlib {
    struct Failure: Error { let code: Int32 }

    static func compress(_ input: [UInt8], level: Int32 = 6) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        var status = spool_deflate_init(&stream, level)
        guard status == Z_OK else { throw Failure(code: status) }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))))
        let produced: Int = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = uInt(target.count)
                status = deflate(&stream, Z_FINISH)
                return target.count - Int(stream.avail_out)
            }
        }
        guard status == Z_STREAM_END else { throw Failure(code: status) }
        output.removeSubrange(produced...)
        return output
    }

    /// Inflates a whole zlib stream; fails on damaged input, trailing garbage, or output beyond
    /// `limit` bytes (a decompression bomb).
    static func decompress(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        let result = inflatePrefix(input, limit: limit)
        if let failure = result.failure { throw failure }
        return result.output
    }

    /// Inflates as much of a zlib stream as can be inflated: for a damaged or truncated stream,
    /// the bytes produced before the damage was detected, with the failure (`Z_DATA_ERROR`,
    /// `Z_BUF_ERROR` for a truncated stream, …). Note that zlib detects some damage only at the
    /// stream's end (its Adler-32), so output may contain wrong bytes: the journal's own frame
    /// checksums catch those.
    static func inflatePrefix(_ input: [UInt8], limit: Int) -> (output: [UInt8], failure: Failure?) {
        var stream = z_stream()
        var status = spool_inflate_init(&stream)
        guard status == Z_OK else { return ([], Failure(code: status)) }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(64 * 1024, input.count * 4))
        var consumedAll = false
        input.withUnsafeBufferPointer { source in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = uInt(source.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { target in
                    stream.next_out = target.baseAddress
                    stream.avail_out = uInt(target.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return target.count - Int(stream.avail_out)
                }
                output.append(contentsOf: chunk[..<min(produced, max(0, limit + 1 - output.count))])
            } while status == Z_OK && output.count <= limit && (stream.avail_in > 0 || stream.avail_out == 0)
            consumedAll = stream.avail_in == 0
        }
        guard status == Z_STREAM_END, consumedAll, output.count <= limit else {
            let code = status == Z_STREAM_END || status == Z_OK ? (output.count > limit ? Z_MEM_ERROR : status == Z_OK ? Z_BUF_ERROR : Z_DATA_ERROR) : status
            return (Array(output.prefix(limit)), Failure(code: code))
        }
        return (output, nil)
    }
}
