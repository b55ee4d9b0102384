"""The figures: each finished trial counted into its kind's figures (mutations, detected,
recovered, reported-lost requests, undetected, violations), its violations printed as they come,
and at the end one line per kind and the `RESULT corruption …` line; exit status 0 iff no
violation."""
import time


class Report:
    def tally(self, kind, result, took):
        """Counts one trial's result (None: the kind had no file to damage)."""
        if result is None:
            return
        stats = self.stats[kind]
        label, (problems, detected, lost, changed) = result
        stats["mutations"] += 1
        stats["detected"] += bool(detected)
        stats["lost"] += len(lost)
        if not problems and not (set(changed) - set(lost)):
            stats["recovered"] += 1
        if not detected and not changed:
            stats["undetected"] += 1
        if problems:
            stats["violations"] += len(problems)
            for problem in problems:
                self.violations.append(f"{label}: {problem}")
                print(f"corruption: VIOLATION {label}: {problem}", flush=True)
        elif self.args.verbose:
            print(f"corruption: ok {label}: detected={detected} lost={len(lost)} changed={len(changed)} {took:.1f}s", flush=True)

    def report(self, started):
        """Prints the figures and the RESULT line; returns the exit status."""
        for kind, stats in self.stats.items():
            print(f"corruption: {kind}: " + " ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
        total = sum(s["mutations"] for s in self.stats.values())
        figures = " ".join(f"{kind}={s['mutations']}/{s['detected']}/{s['recovered']}/{s['lost']}/{s['violations']}"
                           for kind, s in self.stats.items())
        print(f"corruption: per kind mutations/detected/recovered/reported-lost-requests/violations; "
              f"{time.monotonic() - started:.0f}s", flush=True)
        print(f"RESULT corruption violations={len(self.violations)} mutations={total} seed={self.args.seed} {figures}", flush=True)
        return 0 if not self.violations else 1
