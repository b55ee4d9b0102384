import Spool

extension QueueName {
    /// Rental requests and cancels waiting for the allocator.
    public static let allocation = QueueName("allocation")
    /// Outcomes waiting for the notifier to deliver them to the customer.
    public static let notifications = QueueName("notifications")

    /// Every queue of the rental system; `spoolctl` creates them all when it sets a spool up.
    public static let rentalQueues: [QueueName] = [.allocation, .notifications]
}
