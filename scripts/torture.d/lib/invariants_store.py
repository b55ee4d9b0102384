"""The `overlap` check: the allocator store (a copy) has no unit assigned to two overlapping
periods, agrees with the requests' statuses, and names only units of the right size."""
import datetime
import os
import sqlite3


class Store:
    def check_overlap(self, copy):
        path = os.path.join(copy, "allocator", "state.sqlite")
        if not os.path.exists(path):
            if self.acked:
                self.violation("overlap", f"no allocator store at {path}")
            return
        db = sqlite3.connect(path)
        # Two rentals of one unit overlap when each starts before the other ends (end_day is the
        # day after the last day). 'completed' rentals held their unit too.
        for row in db.execute("""
                SELECT a.unit_id, a.request_id, a.start_day, a.end_day, b.request_id, b.start_day, b.end_day
                FROM rental a JOIN rental b ON a.unit_id = b.unit_id AND a.request_id < b.request_id
                WHERE a.state IN ('assigned', 'completed') AND b.state IN ('assigned', 'completed')
                  AND a.start_day < b.end_day AND b.start_day < a.end_day"""):
            self.violation("overlap", f"unit {row[0]} is assigned to {row[1]} (days {row[2]}-{row[3]}) and {row[4]} (days {row[5]}-{row[6]})")
        units = {row[0]: row[1] for row in db.execute("SELECT id, size FROM unit")}
        rentals = {row[0]: row[1:3] for row in db.execute("SELECT request_id, state, unit_id, end_day FROM rental")}
        ends = {row[0]: row[3] for row in db.execute("SELECT request_id, state, unit_id, end_day FROM rental")}
        db.close()
        for request_id in self.acked:
            if request_id not in rentals:
                self.violation("overlap", f"acknowledged request {request_id} is not in the allocator store (never decided)")
        for request_id, (state, unit) in sorted(rentals.items()):
            status = self.statuses.get(request_id)
            if unit is not None and unit not in units:
                self.violation("overlap", f"rental {request_id} names unit {unit}, which is not in the inventory")
            if status is None:
                continue  # not acknowledged (a killed submit); still checked for overlaps above
            if unit is not None and unit in units and units[unit] != status.get("size"):
                self.violation("overlap", f"request {request_id} for size {status.get('size')} holds unit {unit} of size {units[unit]}")
            shown = status.get("state")
            expected = {"assigned": ("assigned", "confirmed"), "cancelled": ("cancelled",),
                        "rejected": ("rejected",), "completed": ("completed",),
                        "waitlisted": ("waitlisted",), "expired": ("expired",)}.get(state, ())
            if shown not in expected:
                self.violation("overlap", f"request {request_id} is '{state}' in the allocator store but {shown} in its status"
                               + (" (a cancelled request still holds its unit)" if state == "assigned" and shown == "cancelled" else ""))
            elif state == "assigned" and status.get("unit") != unit:
                self.violation("overlap", f"request {request_id} holds unit {unit} in the store but shows unit {status.get('unit')}")
            elif state == "assigned" and status.get("to") != str(datetime.date(1970, 1, 1) + datetime.timedelta(days=ends[request_id])):
                # An extend or end (issue 11) moved end_day: the status must show the same end.
                self.violation("overlap", f"request {request_id} ends on day {ends[request_id]} in the store but shows to {status.get('to')}")
