#!/bin/bash
# Run by the Packer template on the instance being baked: installs lifeboat and what the
# fluentd task definition mounts, enables (does not start) the units. Everything that differs
# per fleet is left to user-data.
set -euo pipefail

# Where the template's file provisioners put the RPM and fluent.conf.
dir=${LIFEBOAT_BAKE_DIR:-/tmp}

if [ -n "${RPM_KEY:-}" ]; then
    # A signed package or nothing: import the key, then refuse an RPM it did not sign.
    printf '%s\n' "$RPM_KEY" >"$dir/lifeboat-rpm-key.asc"
    sudo rpm --import "$dir/lifeboat-rpm-key.asc"
    rpm -K "$dir/lifeboat.rpm" | grep -q 'digests signatures OK' ||
        { echo "lifeboat.rpm is not signed by the given key" >&2; exit 1; }
fi
sudo dnf install -y "$dir/lifeboat.rpm"

# fluentd's main configuration, which the ECS task definition bind-mounts read-only; the
# snippet directory lifeboat writes the recovery configs into.
sudo install -D -m 0644 "$dir/fluent.conf" /etc/fluent/fluent.conf
sudo install -d -m 0755 /etc/fluent/recovery.d

# Enabled through the RPM's preset already; enabling again keeps the image right if the preset
# was changed. Nothing starts now: the units run at the next boot of an instance.
sudo systemctl enable lifeboat-boot.service lifeboat-watch.service lifeboat-reap.timer
sudo rm -f "$dir/lifeboat.rpm" "$dir/fluent.conf" "$dir/lifeboat-rpm-key.asc"
