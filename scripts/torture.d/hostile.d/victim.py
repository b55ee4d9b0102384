"""The victim's data: requests in every state the front door can meet (decided ones in the
index and journal, queued ones only in the allocation queue, a cancel pending), and the secrets
nothing the attacker runs may ever print."""
import random
import time

from setup import ATTACKER, BYSTANDER, VICTIM


class Victim:
    def __init__(self, install):
        self.install = install
        root = install.as_root
        for unit in ["A-1", "A-2"]:
            result = root(["units", "add", unit, "--size", "S", "--site", "alpha-site"])
            if result.returncode != 0:
                raise RuntimeError(f"units add {unit}: {result.stderr.strip()}")
        self.customer, self.contact = "alice.victim@example.com", "+4915550001234"
        # Decided: two confirmed (units ), one rejected (no unit left), one cancelled.
        decided = [install.submit(VICTIM, self.customer, self.contact, "2099-03-0%d" % day, key="alice-key-%d" % day)
                   for day in (1, 2, 3)]
        install.run_daemons_until(lambda: all((install.status(i) or {}).get("state") in ("confirmed", "rejected") for i in decided))
        cancelled = next(i for i in decided if install.status(i)["state"] == "confirmed")
        result = install.as_user(VICTIM, [install.spoolctl, "cancel", cancelled])
        if result.returncode != 0:
            raise RuntimeError(f"cancel as the victim: {result.stderr.strip()}")
        install.run_daemons_until(lambda: (install.status(cancelled) or {}).get("state") == "cancelled")
        # Queued, not yet decided (only the allocation queue has them), and a cancel pending.
        queued = [install.submit(VICTIM, self.customer, self.contact, "2099-04-0%d" % day) for day in (4, 5, 6)]
        result = install.as_user(VICTIM, [install.spoolctl, "cancel", queued[2]])
        if result.returncode != 0:
            raise RuntimeError(f"cancel as the victim: {result.stderr.strip()}")
        self.ids = decided + queued
        self.cancelled = [cancelled, queued[2]]
        self.states = {i: (install.status(i) or {}).get("state", "not visible") for i in self.ids}
        # The attacker and the bystander have requests of their own (queued), so their own
        # list is not empty and the answer to "mine" can be compared with "someone else's".
        self.own = {ATTACKER: install.submit(ATTACKER, "mallory@example.net", "mallory@example.net", "2098-01-01"),
                    BYSTANDER: install.submit(BYSTANDER, "eve@example.org", "eve@example.org", "2098-02-01")}
        self.units = ["A-1", "A-2"]
        # What must never appear in an attacker's output (units only outside the inventory
        # listing, which is public).
        self.secrets = self.ids + [self.customer, self.contact, "alice-key-", VICTIM, "2099-03-0", "2099-04-0", "2099-05-0"]

    def leaks(self, text, units_allowed=False):
        found = [s for s in self.secrets if s in text]
        if not units_allowed:
            found += [u for u in self.units if u in text]
        return found


def fake_id(rng, like=None):
    """A request id of the same shape as `like` (or a fresh one) that names no request: same
    time part, new random part."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    prefix = like[:10] if like else None
    if prefix is None:
        milliseconds = int(time.time() * 1000)
        prefix = "".join(alphabet[(milliseconds >> shift) & 31] for shift in range(45, -1, -5))
    return prefix + "".join(rng.choice(alphabet) for _ in range(16))


def neighbours(identifier):
    """Ids next to `identifier`: the last and the first random character stepped up and down."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    result = []
    for position in (25, 10, 9):
        index = alphabet.index(identifier[position])
        for step in (-1, 1):
            character = alphabet[(index + step) % 32]
            result.append(identifier[:position] + character + identifier[position + 1:])
    return result


__all__ = ["Victim", "fake_id", "neighbours", "random"]
