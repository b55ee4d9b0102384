import Spool
import Intake

/// The queue the allocator consumes.
public let allocatorInputQueue: QueueName = .allocation
