output "role_arn" {
  description = "IAM role assumed by the service's pods through EKS Pod Identity."
  value       = aws_iam_role.this.arn
}

output "secrets_policy" {
  description = "The role's secret-reading policy document (JSON), for tests and reviews."
  value       = aws_iam_role_policy.secrets.policy
}

output "service_account" {
  description = "Namespace and service account bound to the role (must match the Helm values)."
  value       = { namespace = var.namespace, name = var.service_account }
}
