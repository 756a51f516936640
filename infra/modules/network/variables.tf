variable "name" {
  description = "Name prefix for network resources, e.g. \"keel-staging\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "name must be lowercase letters, digits and hyphens."
  }
}

variable "cidr_block" {
  description = "VPC IPv4 CIDR block (a /16 to /20)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && tonumber(split("/", var.cidr_block)[1]) >= 16 && tonumber(split("/", var.cidr_block)[1]) <= 20
    error_message = "cidr_block must be a valid IPv4 CIDR between /16 and /20."
  }
}

variable "availability_zones" {
  description = "Availability zone names to span (3 recommended), e.g. [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]. Pinned explicitly so the subnet layout never shifts when AWS adds a zone."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must list 2 or 3 distinct zone names."
  }
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (staging, cheaper) instead of one per AZ (production, zonal resilience)."
  type        = bool
  default     = false
}

variable "cluster_name" {
  description = "EKS cluster name used for subnet discovery tags. Null skips the tags."
  type        = string
  default     = null
}

variable "flow_log_retention_days" {
  description = "CloudWatch retention for VPC flow logs (a CloudWatch Logs retention value, checked by modules/kms-log-group)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
