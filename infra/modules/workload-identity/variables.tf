variable "name" {
  description = "Role name prefix, e.g. \"keel-production\"."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,40}$", var.name))
    error_message = "name must be letters, digits and hyphens."
  }
}

variable "cluster_name" {
  description = "EKS cluster that runs the service (needs the eks-pod-identity-agent add-on)."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be a valid EKS cluster name."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the service account."
  type        = string
  default     = "keel"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS-1123 label."
  }
}

variable "service_account" {
  description = "Kubernetes service account name used by the service's pods."
  type        = string
  default     = "keel"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a DNS-1123 subdomain."
  }
}

variable "secret_arns" {
  description = "Secrets Manager secret ARNs the service may read (only these)."
  type        = list(string)

  validation {
    condition     = length(var.secret_arns) > 0 && alltrue([for a in var.secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^*?]+$", a))])
    error_message = "secret_arns must be non-empty full secret ARNs without wildcards."
  }
}

variable "kms_key_arns" {
  description = "KMS keys encrypting those secrets (decrypt allowed only via Secrets Manager)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:", a))])
    error_message = "kms_key_arns must be KMS key ARNs."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
