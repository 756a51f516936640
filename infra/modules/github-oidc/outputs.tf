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
  description = "Role for terraform plan (pull requests, or the jobs of plan_environments): reads what the plan refreshes and its state prefix."
  value       = aws_iam_role.plan.arn
}

output "plan_environments" {
  description = "GitHub environments the plan role trusts (create each with required reviewers); empty: it trusts pull requests."
  value       = var.plan_environments
}

output "plan_subjects" {
  description = "OIDC sub claims trusted by the plan role: the name form, then (with the repository ids) the immutable form."
  value       = local.plan_subjects
}

output "plan_policies" {
  description = "Inline policy JSON documents of the plan role by name, its only policies (for tests and reviews)."
  value       = merge({ (aws_iam_role_policy.plan_read.name) = aws_iam_role_policy.plan_read.policy }, { for p in aws_iam_role_policy.plan_state : p.name => p.policy })
}

output "deploy_subjects" {
  description = "OIDC sub claims trusted by the deploy role: the name form, then (with the repository ids) the immutable form."
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

output "release_role_arn" {
  description = "Role release.yml assumes to push the image to ECR (only that); null without release_environments."
  value       = one(aws_iam_role.release[*].arn)
}

output "release_subjects" {
  description = "OIDC sub claims trusted by the release role: its environments in the name form, then (with the repository ids) the immutable form."
  value       = local.release_subjects
}

output "release_policy" {
  description = "Inline policy JSON of the release role (for tests and reviews); null without one."
  value       = one(aws_iam_role_policy.release[*].policy)
}

output "apply_role_arn" {
  description = "Role infra.yml assumes for terraform apply, from the apply environments only; null without apply_environments."
  value       = one(aws_iam_role.apply[*].arn)
}

output "apply_environments" {
  description = "GitHub environments the apply role trusts (create each with required reviewers and a deployment rule for main); empty: no apply role."
  value       = var.apply_environments
}

output "apply_subjects" {
  description = "OIDC sub claims trusted by the apply role: its environments in the name form, then (with the repository ids) the immutable form."
  value       = local.apply_subjects
}

output "apply_trust_policy" {
  description = "Trust policy JSON of the apply role (for tests and reviews); null without one."
  value       = one(aws_iam_role.apply[*].assume_role_policy)
}

output "release_trust_policy" {
  description = "Trust policy JSON of the release role (for tests and reviews); null without one."
  value       = one(aws_iam_role.release[*].assume_role_policy)
}
