# Sourced by the scripts: puts Swift on PATH and installs the Debian packages the build and the
# tests need, when they are missing (python3-prometheus-client: the stats tests parse the
# textfile with its parser, from /usr/bin/python3). Idempotent and quiet when all is there.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "swift not found: install a Swift 6 toolchain (see swift.org) and put it on PATH" >&2
    exit 1
fi
spool_missing_packages=()
for spool_package in libsqlite3-dev zlib1g-dev python3 python3-prometheus-client pkg-config; do
    dpkg-query -W -f='${Status}' "$spool_package" 2>/dev/null | grep -q "install ok installed" \
        || spool_missing_packages+=("$spool_package")
done
if [ ${#spool_missing_packages[@]} -gt 0 ]; then
    echo "installing ${spool_missing_packages[*]}" >&2
    spool_sudo=""
    [ "$(id -u)" -eq 0 ] || spool_sudo="sudo"
    $spool_sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $spool_sudo apt-get install -y -qq "${spool_missing_packages[@]}" >/dev/null
fi
unset spool_package spool_missing_packages spool_sudo
