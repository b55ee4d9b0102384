import Spool
import Intake

/// The queue the notifier consumes.
public let notifierInputQueue: QueueName = .notifications
