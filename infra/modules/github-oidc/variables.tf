variable "name" {
  description = "Name prefix for the roles, e.g. \"keel-production\"."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,40}$", var.name))
    error_message = "name must be letters, digits and hyphens."
  }
}

variable "github_repository" {
  description = "GitHub repository allowed to assume the roles, as \"owner/name\"."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be \"owner/name\" without wildcards."
  }
}

# Repositories created (or renamed, or transferred) on github.com on or after 2026-07-15, and older
# ones that opted in, get OIDC subjects with the owner's and the repository's immutable numeric ids:
# repo:OWNER@OWNER_ID/NAME@REPO_ID:<context>. The ids never change and are never reused.
variable "github_repository_owner_id" {
  description = "Numeric id of the repository's owner (gh api repos/OWNER/NAME --jq .owner.id). With github_repository_id the roles also trust the immutable subject form repo:OWNER@OWNER_ID/NAME@REPO_ID:<context>. Null or \"\": only the name form (repositories from before immutable subject claims)."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository_owner_id == null || var.github_repository_owner_id == "" || can(regex("^[1-9][0-9]{0,18}$", var.github_repository_owner_id))
    error_message = "github_repository_owner_id must be the owner's numeric id, digits only (gh api repos/OWNER/NAME --jq .owner.id), or null/\"\" for the name-only subject form."
  }
}

variable "github_repository_id" {
  description = "Numeric id of the repository (gh api repos/OWNER/NAME --jq .id). Set together with github_repository_owner_id; null or \"\": only the name form."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository_id == null || var.github_repository_id == "" || can(regex("^[1-9][0-9]{0,18}$", var.github_repository_id))
    error_message = "github_repository_id must be the repository's numeric id, digits only (gh api repos/OWNER/NAME --jq .id), or null/\"\" for the name-only subject form."
  }
  validation {
    condition     = (var.github_repository_id == null || var.github_repository_id == "") == (var.github_repository_owner_id == null || var.github_repository_owner_id == "")
    error_message = "Set github_repository_owner_id and github_repository_id together (the immutable subject names both), or neither."
  }
}

variable "trust_name_subjects" {
  description = "Also trust the name form repo:OWNER/NAME:<context>. Keep true until the repository's tokens carry the immutable form (new repositories, or after opting in), then set false so that only the ids match. false needs both ids."
  type        = bool
  default     = true
  nullable    = false

  validation {
    condition     = var.trust_name_subjects || (var.github_repository_owner_id != null && var.github_repository_owner_id != "" && var.github_repository_id != null && var.github_repository_id != "")
    error_message = "trust_name_subjects = false needs github_repository_owner_id and github_repository_id: the roles would trust no subject at all."
  }
}

variable "deploy_environments" {
  description = "GitHub environments whose jobs may assume the deploy role (sub = repo:OWNER/NAME:environment:ENV, and repo:OWNER@OWNER_ID/NAME@REPO_ID:environment:ENV with the repository ids)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.deploy_environments : can(regex("^[A-Za-z0-9._-]+$", e))])
    error_message = "Environment names may not contain wildcards or separators."
  }
}

variable "deploy_branches" {
  description = "Branches whose jobs (without a GitHub environment) may assume the deploy role (sub = repo:OWNER/NAME:ref:refs/heads/BRANCH, and the immutable form with the repository ids)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.deploy_branches : can(regex("^[A-Za-z0-9._/-]+$", b))])
    error_message = "Branch names may not contain wildcards."
  }
}

variable "plan_environments" {
  description = "GitHub environments whose jobs may assume the plan role (sub = repo:OWNER/NAME:environment:ENV), instead of any pull request (sub = repo:OWNER/NAME:pull_request); each also in the immutable form with the repository ids. Give production one whose required reviewers approve each plan."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for e in var.plan_environments : can(regex("^[A-Za-z0-9._-]+$", e))])
    error_message = "Plan environment names must be non-empty and may not contain wildcards (*) or separators."
  }
  validation {
    condition     = length(setintersection(var.plan_environments, var.deploy_environments)) == 0
    error_message = "A plan environment must not be a deploy environment: plans get their own environment, with reviewers and no deploy rights."
  }
}

variable "release_environments" {
  description = "GitHub environments whose jobs may assume the release role, which may only push to the ECR repository (release.yml: build, push, sign on a tag). Empty: no release role."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for e in var.release_environments : can(regex("^[A-Za-z0-9._-]+$", e))])
    error_message = "Release environment names must be non-empty and may not contain wildcards (*) or separators."
  }
  validation {
    condition     = length(setintersection(var.release_environments, concat(var.deploy_environments, var.plan_environments))) == 0
    error_message = "A release environment must not be a deploy or plan environment: each role gets its own environment."
  }
}

variable "apply_environments" {
  description = "GitHub environments whose jobs may assume the apply role (terraform apply, administrator): give each required reviewers and a deployment rule for main only. Empty: no apply role."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for e in var.apply_environments : can(regex("^[A-Za-z0-9._-]+$", e))])
    error_message = "Apply environment names must be non-empty and may not contain wildcards (*) or separators."
  }
  validation {
    condition     = length(setintersection(var.apply_environments, concat(var.deploy_environments, var.plan_environments, var.release_environments))) == 0
    error_message = "An apply environment must not be a deploy, plan or release environment: applying gets its own environment and reviewers."
  }
}

variable "apply_policy_arns" {
  description = "Managed policies of the apply role. Applying Keel's roots creates IAM roles and policies, so a narrower policy would only delay an escalation, not prevent it; AdministratorAccess is honest about that."
  type        = list(string)
  default     = ["arn:aws:iam::aws:policy/AdministratorAccess"]
  nullable    = false

  validation {
    condition     = alltrue([for a in var.apply_policy_arns : can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/", a))])
    error_message = "apply_policy_arns must be IAM managed policy ARNs."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider. Set false and pass oidc_provider_arn when another root already created it."
  type        = bool
  default     = true
}

variable "oidc_provider_arn" {
  description = "Existing GitHub OIDC provider ARN (used when create_oidc_provider is false)."
  type        = string
  default     = null

  validation {
    condition     = var.oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be the token.actions.githubusercontent.com OIDC provider ARN."
  }
}

variable "ecr_repository_arn" {
  description = "ECR repository the deploy role may push to."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecr:", var.ecr_repository_arn))
    error_message = "ecr_repository_arn must be an ECR repository ARN."
  }
}

variable "ecr_kms_key_arn" {
  description = "KMS key encrypting the ECR repository (the deploy role needs it to push). Null when AWS-managed."
  type        = string
  default     = null
}

variable "eks_cluster_arn" {
  description = "EKS cluster the deploy role may describe (Kubernetes permissions come from an EKS access entry)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:eks:[a-z0-9-]+:[0-9]{12}:cluster/[^/]+$", var.eks_cluster_arn))
    error_message = "eks_cluster_arn must be an EKS cluster ARN (the plan role's reads are scoped to its region, account and name)."
  }
}

variable "state_bucket_arn" {
  description = "Terraform state bucket ARN the plan role may read (and lock). Null grants no state access."
  type        = string
  default     = null
}

variable "state_key_prefix" {
  description = "Key prefix of this environment's state objects in the state bucket, ending in \"/\" (e.g. \"production/\"): the plan role lists, reads and locks only under it."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.state_bucket_arn == null || can(regex("^([A-Za-z0-9._-]+/)+$", var.state_key_prefix))
    error_message = "With state_bucket_arn, state_key_prefix must be a non-empty key prefix ending in \"/\", without wildcards: an empty one would open the whole bucket."
  }
}

variable "state_kms_key_arn" {
  description = "KMS key encrypting the state objects (infra/bootstrap output state_kms_key_arn, backend kms_key_id). The plan role may use it through S3 only, to read the state and write the lockfile. Null when the bucket uses S3-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.state_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.state_kms_key_arn))
    error_message = "state_kms_key_arn must be a KMS key ARN (not an alias)."
  }
  validation {
    condition     = var.state_kms_key_arn == null || var.state_bucket_arn != null
    error_message = "state_kms_key_arn needs state_bucket_arn."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
