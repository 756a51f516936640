variable "aws_region" {
  description = "AWS region of the environment, e.g. \"eu-west-1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name."
  }
}

variable "allowed_account_ids" {
  description = "AWS account ids this environment may be applied to (guards against the wrong credentials)."
  type        = list(string)

  validation {
    condition     = length(var.allowed_account_ids) > 0 && alltrue([for a in var.allowed_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "allowed_account_ids must list 12-digit account ids."
  }
}

variable "availability_zones" {
  description = "Three availability zones of aws_region, e.g. [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "Keel spans exactly three availability zones."
  }
}

variable "vpc_cidr" {
  description = "VPC CIDR block."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR."
  }
}

variable "github_repository" {
  description = "GitHub repository (\"owner/name\") whose workflows deploy this environment."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be \"owner/name\"."
  }
}

variable "github_deploy_environments" {
  description = "GitHub environments allowed to assume the deploy role."
  type        = list(string)
  default     = ["staging"]
}

variable "github_deploy_branches" {
  description = "Branches allowed to assume the deploy role without a GitHub environment."
  type        = list(string)
  default     = []
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider here (false when another environment in the same account owns it)."
  type        = bool
  default     = true
}

variable "github_oidc_provider_arn" {
  description = "Existing GitHub OIDC provider ARN, when create_github_oidc_provider is false."
  type        = string
  default     = null
}

variable "state_bucket_name" {
  description = "Terraform state bucket (from infra/bootstrap) that the plan role may read."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be a valid S3 bucket name."
  }
}

variable "admin_role_arns" {
  description = "IAM roles granted cluster-admin on EKS (e.g. the SSO administrator role)."
  type        = list(string)

  validation {
    condition     = length(var.admin_role_arns) > 0
    error_message = "At least one admin role is required: the cluster creator gets no implicit access."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "cluster_endpoint_public_access" {
  description = "Also expose the EKS API publicly, restricted to cluster_public_access_cidrs."
  type        = bool
  default     = false
}

variable "cluster_public_access_cidrs" {
  description = "Allowlist for the public EKS endpoint."
  type        = list(string)
  default     = []

  validation {
    condition     = !var.cluster_endpoint_public_access || length(var.cluster_public_access_cidrs) > 0
    error_message = "A public EKS endpoint requires a non-empty cluster_public_access_cidrs allowlist."
  }
}

variable "node_instance_types" {
  description = "EKS node instance types."
  type        = list(string)
  default     = ["t3.medium"]
}

variable "node_min_size" {
  description = "Minimum number of EKS nodes."
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "Initial number of EKS nodes."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Maximum number of EKS nodes."
  type        = number
  default     = 3
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "RDS initial storage in GiB."
  type        = number
  default     = 20
}

variable "service_namespace" {
  description = "Kubernetes namespace of the Keel release."
  type        = string
  default     = "keel"
}

variable "service_account" {
  description = "Kubernetes service account of the Keel pods."
  type        = string
  default     = "keel"
}

variable "tags" {
  description = "Extra tags applied to every resource (merged over the defaults)."
  type        = map(string)
  default     = {}
}
