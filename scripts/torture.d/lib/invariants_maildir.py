"""The `maildir` check: at most one message per (customer, request, outcome), each in the
request's customer's Maildir, and one for every notified outcome (read with mailbox.Maildir)."""
import mailbox
import os

from invariants_spool import NEEDS_NOTICE


class Maildir:
    def check_maildir(self, copy):
        root = self.maildir_root
        if os.path.realpath(root).startswith(os.path.realpath(self.spool) + os.sep):
            root = os.path.join(copy, os.path.relpath(os.path.realpath(root), os.path.realpath(self.spool)))
        seen = {}
        if os.path.isdir(root):
            for customer in sorted(os.listdir(root)):
                path = os.path.join(root, customer)
                if not os.path.isdir(os.path.join(path, "new")):
                    continue
                box = mailbox.Maildir(path, factory=None, create=False)
                for key in box.iterkeys():
                    message = box.get_message(key)
                    request_id, kind = message.get("X-Request-ID"), message.get("X-Notification-Kind")
                    if not request_id or not kind:
                        self.violation("maildir", f"message {customer}/{key} has no X-Request-ID or X-Notification-Kind")
                        continue
                    # Issue 11: one message per event id (a change has one per revision), and
                    # at most one confirmation/rejection/cancellation/waitlisted/expiry a request.
                    once = kind in ("confirmation", "rejection", "cancellation", "waitlisted", "expiry")
                    seen.setdefault((customer, request_id, kind if once else kind + " " + str(message.get("Message-ID"))), []).append(key)
                    status = self.statuses.get(request_id)
                    if status is not None and status.get("customer") != customer:
                        self.violation("maildir", f"message {kind} of {request_id} (customer {status.get('customer')}) is in the Maildir of {customer}")
        for (customer, request_id, kind), keys in sorted(seen.items()):
            if len(keys) > 1:
                self.violation("maildir", f"customer {customer} has {len(keys)} {kind} messages for request {request_id}: {', '.join(sorted(keys))}")
        delivered = {(request_id, kind.split(" ")[0]) for (_, request_id, kind) in seen}
        for request_id, status in sorted(self.statuses.items()):
            kind = NEEDS_NOTICE.get(status.get("state"))
            if kind and (status.get("notified_at") or status.get("state") == "confirmed") and (request_id, kind) not in delivered:
                self.violation("maildir", f"request {request_id} is {status.get('state')} and notified but its customer has no {kind} message")
