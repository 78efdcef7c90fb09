#!/bin/bash
# lifeboat on the ECS-optimized Amazon Linux 2023 AMI: EC2 user data as a shell script.
#
# cloud-init runs this inside cloud-final.service, and ecs.service is ordered after
# cloud-final: never start or restart ecs synchronously from here, it would wait for this
# script while this script waits for it. ecs.service starts by itself once this returns, and
# lifeboat's drop-in orders it after lifeboat-boot.service.
#
# Replace my-cluster (also the lifeboat:group tag in the launch template and on the instance
# role) and /dev/sdf (the buffer volume's device in the launch template). LIFEBOAT_RPM, when
# set, installs lifeboat on an AMI that does not have it.
set -euo pipefail

CLUSTER=my-cluster
BUFFER_DEVICE=/dev/sdf
LIFEBOAT_RPM=

mkdir -p /etc/ecs /etc/lifeboat
# Appended: the ECS convention, and later lines win in both files.
cat >>/etc/ecs/ecs.config <<EOF
ECS_CLUSTER=$CLUSTER
ECS_ENABLE_SPOT_INSTANCE_DRAINING=true
EOF
cat >>/etc/lifeboat/lifeboat.conf <<EOF
LIFEBOAT_BUFFER_DEVICE=$BUFFER_DEVICE
EOF
chmod 600 /etc/lifeboat/lifeboat.conf   # root only, as the package installs it: it may hold keys

if ! command -v lifeboat >/dev/null && [ -n "$LIFEBOAT_RPM" ]; then
        dnf install -y "$LIFEBOAT_RPM"
        systemctl daemon-reload
fi

if systemctl cat lifeboat-boot.service >/dev/null 2>&1; then
        # Installed with its units: run "lifeboat boot" through lifeboat-boot.service, so that
        # it runs once, logs to "journalctl -u lifeboat-boot", and ecs.service finds it done.
        # restart, not start: on an AMI with lifeboat baked in, the unit already ran at boot,
        # before this script wrote the settings.
        if ! systemctl restart lifeboat-boot.service; then
                echo "lifeboat: boot recovery failed; see journalctl -u lifeboat-boot" >&2
        fi
        systemctl start --no-block lifeboat-watch.service lifeboat-reap.timer
else
        # The binary alone. Exit 1 (some volumes skipped or quarantined) is not fatal, and
        # nothing here may keep the instance from joining the cluster.
        rc=0
        lifeboat boot || rc=$?
        if [ "$rc" -gt 1 ]; then
                echo "lifeboat: boot exited $rc; the ECS agent starts anyway" >&2
        fi
fi
