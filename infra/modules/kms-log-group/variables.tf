variable "log_group_name" {
  description = "CloudWatch log group name, e.g. \"/aws/eks/keel-staging/cluster\"."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_./#-]{1,512}$", var.log_group_name))
    error_message = "log_group_name must be a CloudWatch log group name."
  }
}

variable "key_description" {
  description = "Description of the KMS key (what it encrypts)."
  type        = string
}

variable "retention_in_days" {
  description = "Retention of the log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.retention_in_days)
    error_message = "retention_in_days must be a CloudWatch Logs retention value."
  }
}

variable "tags" {
  description = "Tags applied to the key and the log group."
  type        = map(string)
  default     = {}
}
