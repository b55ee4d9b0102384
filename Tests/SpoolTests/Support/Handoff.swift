import Foundation

/// A value handed once from another thread to the test, which waits for it.
final class Handoff<Value>: @unchecked Sendable {
    private let lock = NSCondition()
    private var value: Value??

    func set(_ value: Value?) {
        lock.lock()
        self.value = .some(value)
        lock.broadcast()
        lock.unlock()
    }

    func wait() -> Value? {
        lock.lock()
        defer { lock.unlock() }
        while value == nil { lock.wait() }
        return value!
    }
}
