variable "name" {
  description = "Identifier prefix for the database and related resources, e.g. \"keel-staging\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,50}$", var.name))
    error_message = "name must start with a letter and contain only lowercase letters, digits and hyphens."
  }
}

variable "environment" {
  description = "Environment name: staging or production. Production enables multi-AZ and deletion protection."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "vpc_id" {
  description = "VPC in which the database runs."
  type        = string

  validation {
    condition     = can(regex("^vpc-", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "subnet_ids" {
  description = "Private subnet ids for the DB subnet group (at least two AZs)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "At least two subnets are required."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups (e.g. EKS nodes) allowed to connect on 5432."
  type        = list(string)
  default     = []
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = can(regex("^db\\.", var.instance_class))
    error_message = "instance_class must start with db."
  }
}

variable "engine_version" {
  description = "PostgreSQL major (or major.minor) version."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^17(\\.[0-9]+)?$", var.engine_version))
    error_message = "Keel targets PostgreSQL 17."
  }
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage >= 20
    error_message = "allocated_storage must be at least 20 GiB."
  }
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "database_name" {
  description = "Initial database name."
  type        = string
  default     = "keel"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a valid PostgreSQL identifier."
  }
}

variable "master_username" {
  description = "Master user name; the password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "keel_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,15}$", var.master_username)) && var.master_username != "admin"
    error_message = "master_username must be a valid identifier (max 16 chars) and not a reserved word."
  }
}

variable "app_username" {
  description = "Base name of the PostgreSQL roles the service logs in as (DML only): the db-app secret names this role or the same with _b, alternately (scripts/db-app-password.sh); keel migrate, as the master user, creates the one it names with that secret's password."
  type        = string
  default     = "keel_app"

  validation {
    # 61 characters at most: the alternate role's name (+ "_b") must fit PostgreSQL's 63.
    condition     = can(regex("^[a-z][a-z0-9_]{0,60}$", var.app_username)) && !startswith(var.app_username, "pg_")
    error_message = "app_username must be a lowercase PostgreSQL identifier of at most 61 characters (its alternate adds _b), not starting with pg_ (reserved by PostgreSQL)."
  }
  validation {
    condition     = !contains([var.app_username, "${var.app_username}_b"], var.master_username)
    error_message = "Neither app_username nor its alternate (app_username with _b) may be master_username: the service must not log in as the schema owner."
  }
}

variable "backup_retention_days" {
  description = "Automated backup retention (enables point-in-time recovery)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN for storage, Performance Insights and the master secret. Null creates one."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN or null."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
