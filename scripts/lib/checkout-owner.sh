# Sourced by scripts/install and scripts/build-deb: never build as root in someone else's checkout.
#
# Root running a build in a checkout another user owns would leave root-owned files in
# .build-static (the user's next build then fails on them), and git refuses to describe a
# repository owned by someone else ("dubious ownership"), so the version stamp would be wrong.
# So when root runs in a checkout owned by another user, the build runs as that user (runuser,
# with the user's HOME for SwiftPM's caches), and says so on stderr; the steps that need root
# (installing the files, users, services) stay root's. A build directory that already holds
# files of another owner is refused with a hint, so that nothing is built half as one user and
# half as another.
#
#   as_checkout_owner COMMAND...   run COMMAND as the checkout's owner (directly when that is us)
#
# Expects to be sourced from the repository root (the scripts cd there first).
checkout_uid=$(stat -c %u .)
checkout_owner=$(stat -c %U .)
as_checkout_owner() {
    if [ "$(id -u)" -ne 0 ] || [ "$checkout_uid" -eq 0 ]; then "$@"; return; fi
    local home dir
    getent passwd "$checkout_uid" >/dev/null || {
        echo "$(basename "$0"): this checkout belongs to uid $checkout_uid, who has no account; chown it to a user, or build as root in a checkout root owns" >&2
        exit 77
    }
    home=$(getent passwd "$checkout_uid" | cut -d: -f6)
    [ -n "$home" ] && [ -d "$home" ] || home=$(mktemp -d)
    for dir in .build-static .build-deb; do
        if [ -e "$dir" ] && [ -n "$(find "$dir" ! -uid "$checkout_uid" -print -quit)" ]; then
            echo "$(basename "$0"): $PWD/$dir has files not owned by $checkout_owner, who owns this checkout; remove it (rm -rf $PWD/$dir) or give it to $checkout_owner (chown -R $checkout_owner $PWD/$dir), then run this again" >&2
            exit 73
        fi
    done
    echo "$(basename "$0"): this checkout belongs to $checkout_owner: building as $checkout_owner (runuser), not as root" >&2
    runuser -u "$checkout_owner" -- env HOME="$home" PATH="$PATH" "$@"
}
