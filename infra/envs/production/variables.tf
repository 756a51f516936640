# Per-deployment values (terraform.tfvars, see terraform.tfvars.example), passed on to
# modules/stack, whose variables.tf describes and validates them. An optional one that
# terraform.tfvars leaves out stays null here, and null gets the stack's default.

variable "aws_region" { type = string }
variable "availability_zones" { type = list(string) }
variable "github_repository" { type = string }
variable "state_bucket_name" { type = string }
variable "admin_role_arns" { type = list(string) }

variable "github_repository_owner_id" {
  type    = string
  default = null
}

variable "github_repository_id" {
  type    = string
  default = null
}

variable "github_trust_name_subjects" {
  type    = bool
  default = null
}

variable "github_deploy_environments" {
  type    = list(string)
  default = null
}

variable "github_apply_environments" {
  type    = list(string)
  default = null
}

variable "github_deploy_branches" {
  type    = list(string)
  default = null
}

variable "state_kms_key_arn" {
  type    = string
  default = null
}

variable "create_github_oidc_provider" {
  type    = bool
  default = null
}

variable "github_oidc_provider_arn" {
  type    = string
  default = null
}

variable "kubernetes_version" {
  type    = string
  default = null
}

variable "cluster_endpoint_public_access" {
  type    = bool
  default = null
}

variable "cluster_public_access_cidrs" {
  type    = list(string)
  default = null
}

variable "service_namespace" {
  type    = string
  default = null
}

variable "service_account" {
  type    = string
  default = null
}

# Used here, not by the stack: the provider's account guard and default tags.
variable "allowed_account_ids" {
  description = "AWS account ids this environment may be applied to (guards against the wrong credentials)."
  type        = list(string)

  # An empty list would switch the provider's guard off.
  validation {
    condition     = length(var.allowed_account_ids) > 0 && alltrue([for a in var.allowed_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "allowed_account_ids must list 12-digit account ids."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource (merged over the defaults)."
  type        = map(string)
  default     = {}
}
