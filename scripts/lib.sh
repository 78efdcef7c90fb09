# Shared by scripts/test, scripts/demo and scripts/bench. Sourced, not run.

# Debian package names. Build: compiler, CMake, the five libraries through pkg-config.
LB_BUILD_PACKAGES=(gcc cmake make pkg-config libcurl4-openssl-dev libjansson-dev libexpat1-dev
    libblkid-dev libmount-dev)
# Run time: the mkfs tools and losetup.
LB_RUNTIME_PACKAGES=(xfsprogs e2fsprogs util-linux mount)
# Tests: cmocka, Debian's pytest, awscli for the faithfulness check of the fake AWS.
# fdisk (sfdisk) writes a partition table for a test, curl signs a request with --aws-sigv4 to
# check the fake's verifier, time (/usr/bin/time -v) measures peak RSS in scripts/bench.
LB_TEST_PACKAGES=(libcmocka-dev python3 python3-pytest awscli fdisk curl time "${LB_RUNTIME_PACKAGES[@]}")
# Packaging tests: rpmbuild and rpmlint, rpm2cpio and cpio to unpack, cloud-init's schema
# check, the shell linter, systemd-analyze, YAML for reading the cloud-config.
LB_TEST_PACKAGES+=(rpm rpm2cpio rpmlint cpio cloud-init shellcheck systemd python3-yaml)

lb_require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$1: needs root (loop devices, mounts, package installs): run it with sudo" >&2
        exit 2
    fi
}

# Installs the Debian packages that are not installed yet (one apt-get update at most).
lb_install_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "missing packages: ${missing[*]} (and no apt-get to install them)" >&2
        exit 2
    fi
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Checks that loop devices can be set up here.
lb_require_loop() {
    if [ ! -e /dev/loop-control ] && ! modprobe loop 2>/dev/null; then
        echo "$1: loop devices are not available (no /dev/loop-control, modprobe loop failed)" >&2
        exit 2
    fi
}
