import CZlib

extension CRC32 {
    /// The CRC-32 of the bytes before and `bytes`, given `crc` of the bytes before (0 for
    /// none): a checksum computed piece by piece (`spoolctl backup`'s manifest of large files).
    public static func update(_ crc: UInt32, _ bytes: some Collection<UInt8>) -> UInt32 {
        let value = bytes.withContiguousStorageIfAvailable { buffer in
            crc32(uLong(crc), buffer.baseAddress, uInt(buffer.count))
        } ?? Array(bytes).withUnsafeBufferPointer { crc32(uLong(crc), $0.baseAddress, uInt($0.count)) }
        return UInt32(truncatingIfNeeded: value)
    }
}
