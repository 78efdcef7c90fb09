# shellcheck shell=bash disable=SC2034  # sourced: the arrays are used by the scripts
# Shared by scripts/test, scripts/demo and scripts/bench. Sourced, not run.

# Debian package names. Build: compiler, CMake, the libraries through pkg-config (libsystemd
# for sd_notify is optional to the build, but CI builds with it).
LB_BUILD_PACKAGES=(gcc cmake make pkg-config libcurl4-openssl-dev libjansson-dev libexpat1-dev
    libblkid-dev libmount-dev libsystemd-dev)
# Run time: the mkfs tools and losetup.
LB_RUNTIME_PACKAGES=(xfsprogs e2fsprogs util-linux mount)
# Tests: cmocka, Debian's pytest, awscli for the faithfulness check of the fake AWS.
# fdisk (sfdisk) writes a partition table for a test, curl signs a request with --aws-sigv4 to
# check the fake's verifier, time (/usr/bin/time -v) measures peak RSS in scripts/bench.
LB_TEST_PACKAGES=(libcmocka-dev python3 python3-pytest awscli fdisk curl time "${LB_RUNTIME_PACKAGES[@]}")
# Packaging tests: rpmbuild and rpmlint, rpm2cpio and cpio to unpack, cloud-init's schema
# check, the shell linter, systemd-analyze, YAML for reading the cloud-config.
LB_TEST_PACKAGES+=(rpm rpm2cpio rpmlint cpio cloud-init shellcheck systemd python3-yaml)
# The man page (scdoc makes it, mandoc and man lint it) and the bash completion (run in bash).
LB_TEST_PACKAGES+=(scdoc mandoc man-db groff-base bash-completion)
# The AMI bake template is checked with Debian's packer (packer validate, offline).
LB_TEST_PACKAGES+=(packer)

lb_require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$1: needs root (loop devices, mounts, package installs): run it with sudo" >&2
        exit 2
    fi
}

# Package lists older than this are refreshed before deciding what to install.
LB_APT_LISTS_MAX_AGE_MIN=${LB_APT_LISTS_MAX_AGE_MIN:-360}

lb_apt_lists_fresh() {
    local stamp=/var/cache/apt/pkgcache.bin
    [ -e "$stamp" ] && [ -z "$(find "$stamp" -mmin +"$LB_APT_LISTS_MAX_AGE_MIN" 2>/dev/null)" ]
}

# Installs the current candidate of every Debian package named: the missing ones, and the ones
# installed at another version. A fresh machine has its image's package versions, often older
# than the mirror's (Debian 12's first libexpat1-dev had an expat.h without <stdint.h>); this
# gives it the headers CI builds with. (scripts/check-includes makes sure the sources still
# build with the old ones.) apt-get update runs when the lists are older than
# LB_APT_LISTS_MAX_AGE_MIN minutes or a package is missing; LIFEBOAT_NO_APT=1 skips all of it
# (then missing packages are an error).
lb_install_packages() {
    local missing=() stale=() p installed candidate
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "${LIFEBOAT_NO_APT:-0}" = 1 ]; then
        [ ${#missing[@]} -eq 0 ] && return 0
        echo "missing packages: ${missing[*]} (and LIFEBOAT_NO_APT=1)" >&2
        exit 2
    fi
    if ! command -v apt-get >/dev/null; then
        [ ${#missing[@]} -eq 0 ] && return 0
        echo "missing packages: ${missing[*]} (and no apt-get to install them)" >&2
        exit 2
    fi
    if [ ${#missing[@]} -gt 0 ] || ! lb_apt_lists_fresh; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
    fi
    for p in "$@"; do
        installed=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || continue
        candidate=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: //p')
        if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && [ -n "$installed" ] && [ "$installed" != "$candidate" ]; then
            stale+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && [ ${#stale[@]} -eq 0 ] && return 0
    [ ${#missing[@]} -gt 0 ] && echo "installing: ${missing[*]}"
    [ ${#stale[@]} -gt 0 ] && echo "upgrading to the current candidate: ${stale[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" "${stale[@]}" >/dev/null
}

# Checks that loop devices can be set up here.
lb_require_loop() {
    if [ ! -e /dev/loop-control ] && ! modprobe loop 2>/dev/null; then
        echo "$1: loop devices are not available (no /dev/loop-control, modprobe loop failed)" >&2
        exit 2
    fi
}
