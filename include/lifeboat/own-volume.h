/* SPDX-License-Identifier: MIT */
#pragma once

#include "lifeboat/blockdev.h"
#include "lifeboat/context.h"
#include "lifeboat/ec2.h"

/*
 * The instance's own buffer volume, as boot and watch both find it: the volume
 * attached to this instance at LIFEBOAT_BUFFER_DEVICE (sdX and xvdX are the same
 * slot), and the query that finds its block device.
 */

/* The volume of l attached to instance_id at device, and (ret_att) that attachment; NULL if none. */
const struct lb_volume *lb_own_volume_find(const struct lb_volume_list *l, const char *instance_id,
                                           const char *device, const struct lb_attachment **ret_att);

/* The block device query of a volume attached at launch (no snapshot to compare with: a Xen
 * device is accepted by name and size). The query points into s, v and att. */
void lb_own_volume_query(const struct lb_settings *s, const struct lb_volume *v, const struct lb_attachment *att,
                         struct lb_blockdev_query *ret);
