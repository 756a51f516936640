output "oidc_provider_arn" {
  description = "GitHub OIDC provider ARN."
  value       = local.oidc_provider_arn
}

output "deploy_role_arn" {
  description = "Role the deploy workflow assumes (aws-actions/configure-aws-credentials role-to-assume)."
  value       = aws_iam_role.deploy.arn
}

output "deploy_role_name" {
  description = "Deploy role name."
  value       = aws_iam_role.deploy.name
}

output "plan_role_arn" {
  description = "Read-only role for terraform plan on pull requests."
  value       = aws_iam_role.plan.arn
}

output "deploy_subjects" {
  description = "OIDC sub claims trusted by the deploy role."
  value       = local.deploy_subjects
}

output "deploy_trust_policy" {
  description = "Trust policy JSON of the deploy role (for tests and reviews)."
  value       = aws_iam_role.deploy.assume_role_policy
}

output "plan_trust_policy" {
  description = "Trust policy JSON of the plan role (for tests and reviews)."
  value       = aws_iam_role.plan.assume_role_policy
}
