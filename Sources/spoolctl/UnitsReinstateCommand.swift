import Allocator
import ArgumentParser
import Intake
import Rentals

extension Units {
    /// `; N waiting requests assigned` after an inventory change that promoted some (nothing
    /// otherwise): the allocator publishes their confirmations at its next tick.
    static func promotedText(_ promotion: WaitlistPromotion) -> String {
        let count = promotion.promoted.count
        guard count > 0 else { return "" }
        return "; \(count) waiting request\(count == 1 ? "" : "s") assigned (the allocator notifies \(count == 1 ? "its customer" : "their customers") within seconds)"
    }

    struct Reinstate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reinstate",
            abstract: "Put a retired unit back in service; waiting requests it fits are assigned to it at once.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Unit id.") var id: String

        func run() throws {
            try global.requireOperator(to: "change the inventory")
            let (store, configuration) = try Units.store(global, operatorAction: "change the inventory")
            let promotion = WaitlistPromotion(units: [id], configuration: configuration)
            let unit: StorageUnit
            do { unit = try store.reinstateUnit(id, afterChange: promotion.hook) } catch let error as InventoryError {
                throw Units.failure(error, global)
            } catch {
                throw Failure(IntakeError.mapping(error, doing: "reinstating \(id.echoed)", spoolRoot: configuration.spoolRoot), json: global.json)
            }
            if global.json {
                try printJSONObject(["id": unit.id, "size": unit.size, "site": unit.site, "in_service": true, "promoted": promotion.promoted])
            } else {
                try emit("unit \(unit.id) back in service" + Units.promotedText(promotion))
            }
        }
    }
}
