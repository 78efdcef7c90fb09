# Bakes lifeboat into the ECS-optimized Amazon Linux 2023 AMI.
#
#   packer build -var rpm=build/rpm/lifeboat-0.1.0-1.amzn2023.x86_64.rpm \
#                -var region=us-east-1 packaging/packer/lifeboat-ecs-al2023.pkr.hcl
#
# The image gets the RPM (verified against its signature when rpm_key is given), the units
# enabled but not started, and the fluentd configuration the ECS task definition mounts. What
# differs per fleet (the group, the buffer device, ECS_CLUSTER) stays in user-data: see the
# README's "Bake or user-data". HCL2 without data sources or required_plugins, so that the
# Packer of Debian 12 (1.6.6, amazon builder built in) validates it offline; newer Packer
# needs the amazon plugin (`packer plugins install github.com/hashicorp/amazon`).

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "m6i.large"
}

variable "rpm" {
  type        = string
  description = "The lifeboat RPM built on Amazon Linux 2023 (scripts/rpm)."
}

variable "rpm_key" {
  type        = string
  default     = ""
  description = "The public key the RPM is signed with (rpm --import); empty: no check (not for production)."
}

variable "ami_prefix" {
  type    = string
  default = "ecs-al2023-lifeboat"
}

locals {
  stamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "ecs_al2023" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "ec2-user"
  ami_name      = "${var.ami_prefix}-${local.stamp}"

  # The current ECS-optimized Amazon Linux 2023 AMI (the SSM parameter
  # /aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id names the same one).
  source_ami_filter {
    filters = {
      name                = "al2023-ami-ecs-hvm-*-kernel-6.1-x86_64"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  # IMDSv2: Amazon Linux 2023 AMIs are registered with ImdsSupport v2.0, so the bake
  # instance (and every instance of the image) requires tokens without a setting here.

  tags = {
    Name      = "${var.ami_prefix}-${local.stamp}"
    BaseImage = "{{ .SourceAMIName }}"
  }
}

build {
  sources = ["source.amazon-ebs.ecs_al2023"]

  provisioner "file" {
    source      = var.rpm
    destination = "/tmp/lifeboat.rpm"
    generated   = true # the RPM is built before the bake: not looked at by packer validate
  }

  provisioner "file" {
    source      = "${path.root}/../fluentd/fluent.conf"
    destination = "/tmp/fluent.conf"
  }

  provisioner "shell" {
    environment_vars = ["RPM_KEY=${var.rpm_key}"]
    script           = "${path.root}/install-lifeboat.sh"
  }
}
