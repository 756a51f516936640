# --- What differs between environments: set as literals by envs/<environment>/main.tf ---

variable "environment" {
  description = "Environment name; resources are named keel-<environment>. \"production\" makes the database multi-AZ, deletion-protected and snapshotted on delete, and keeps ECR from deleting a repository that holds images."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheaper) instead of one per AZ (survives the loss of a zone)."
  type        = bool
}

variable "vpc_cidr" {
  description = "VPC CIDR block, e.g. \"10.20.0.0/16\"."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR."
  }
}

variable "node_instance_types" {
  description = "EKS node instance types."
  type        = list(string)
}

variable "node_min_size" {
  description = "Minimum number of EKS nodes."
  type        = number
}

variable "node_desired_size" {
  description = "Initial number of EKS nodes."
  type        = number
}

variable "node_max_size" {
  description = "Maximum number of EKS nodes."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_allocated_storage" {
  description = "RDS initial storage in GiB."
  type        = number
}

# --- Per deployment: from the root's terraform.tfvars. Optional ones may be passed as null. ---

variable "aws_region" {
  description = "AWS region of the environment, e.g. \"eu-west-1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name."
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

variable "github_repository" {
  description = "GitHub repository (\"owner/name\") whose workflows deploy this environment."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be \"owner/name\"."
  }
}

variable "github_repository_owner_id" {
  description = "Numeric id of github_repository's owner (gh api repos/OWNER/NAME --jq .owner.id). With github_repository_id the OIDC roles also trust GitHub's immutable subjects repo:OWNER@OWNER_ID/NAME@REPO_ID:<context> (repositories created, renamed or transferred on or after 2026-07-15, or opted in). Null: the name form only."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository_owner_id == null || var.github_repository_owner_id == "" || can(regex("^[1-9][0-9]{0,18}$", var.github_repository_owner_id))
    error_message = "github_repository_owner_id must be digits only (gh api repos/OWNER/NAME --jq .owner.id), or null."
  }
}

variable "github_repository_id" {
  description = "Numeric id of github_repository (gh api repos/OWNER/NAME --jq .id), set together with github_repository_owner_id. Null: the name form only."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository_id == null || var.github_repository_id == "" || can(regex("^[1-9][0-9]{0,18}$", var.github_repository_id))
    error_message = "github_repository_id must be digits only (gh api repos/OWNER/NAME --jq .id), or null."
  }
}

variable "github_trust_name_subjects" {
  description = "The OIDC roles also trust the name form repo:OWNER/NAME:<context>. Set false once the repository's tokens carry the immutable form (needs both ids)."
  type        = bool
  default     = true
  nullable    = false
}

variable "github_deploy_environments" {
  description = "GitHub environments allowed to assume the deploy role (null: [environment])."
  type        = list(string)
  default     = null
}

variable "github_deploy_branches" {
  description = "Branches allowed to assume the deploy role without a GitHub environment."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "github_plan_environments" {
  description = "GitHub environments whose jobs may assume the plan role instead of any pull request ([]: pull requests). Production sets one with required reviewers (envs/production/main.tf)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "github_apply_environments" {
  description = "GitHub environments whose jobs may assume the apply role (infra.yml's terraform apply on main). null: [\"<environment>-infra\"]; []: no apply role. Give each required reviewers and a deployment rule for main only."
  type        = list(string)
  default     = null
}

variable "github_release_environments" {
  description = "GitHub environments whose jobs may assume the release role, which may only push to this environment's ECR repository (release.yml). []: no release role. Production sets [\"release\"] (envs/production/main.tf)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider here (false when another environment in the same account owns it)."
  type        = bool
  default     = true
  nullable    = false
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

variable "state_kms_key_arn" {
  description = "KMS key of the state bucket (infra/bootstrap output state_kms_key_arn, the kms_key_id of backend.hcl): the plan role may decrypt the state and encrypt its lockfile with it, through S3 only. Null when the bucket uses S3-managed keys."
  type        = string
  default     = null
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
  nullable    = false
}

variable "cluster_endpoint_public_access" {
  description = "Also expose the EKS API publicly, restricted to cluster_public_access_cidrs."
  type        = bool
  default     = false
  nullable    = false
}

variable "cluster_public_access_cidrs" {
  description = "Allowlist for the public EKS endpoint."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = !var.cluster_endpoint_public_access || length(var.cluster_public_access_cidrs) > 0
    error_message = "A public EKS endpoint requires a non-empty cluster_public_access_cidrs allowlist."
  }
}

variable "service_namespace" {
  description = "Kubernetes namespace of the Keel release."
  type        = string
  default     = "keel"
  nullable    = false
}

variable "service_account" {
  description = "Kubernetes service account of the Keel pods."
  type        = string
  default     = "keel"
  nullable    = false
}
