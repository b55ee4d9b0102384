import Rentals

extension RentalStatus {
    /// The `waiting list` line of `spoolctl status` for a waitlisted request: its position
    /// among the requests waiting for its size (and site), since when, and when it expires.
    static func waitlistText(_ place: WaitlistPlace, size: String, site: String?, from: CalendarDay) -> String {
        let position = place.position.map { "position \($0) for size \(size)\(site.map { " at \($0)" } ?? " at any site"), " } ?? ""
        return "\(position)waiting since \(place.since); expires \(from) if no unit is assigned before"
    }
}
