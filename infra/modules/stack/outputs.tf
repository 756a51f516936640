output "aws_region" {
  description = "Region (deploy workflow: aws-region)."
  value       = var.aws_region
}

output "cluster_name" {
  description = "EKS cluster name (deploy workflow: aws eks update-kubeconfig --name)."
  value       = module.eks.cluster_name
}

output "ecr_repository_url" {
  description = "ECR repository URL (deploy workflow push target; Helm image.repository)."
  value       = module.ecr.repository_url
}

output "deploy_role_arn" {
  description = "Role for the deploy workflow (configure-aws-credentials role-to-assume)."
  value       = module.github_oidc.deploy_role_arn
}

output "plan_role_arn" {
  description = "Role for terraform plan: reads what the plan refreshes and this environment's state prefix, nothing else."
  value       = module.github_oidc.plan_role_arn
}

output "apply_role_arn" {
  description = "Role for terraform apply (infra.yml on main), assumable only from the apply environments; null without them."
  value       = module.github_oidc.apply_role_arn
}

output "github_apply_environments" {
  description = "GitHub environments the apply role trusts: create each with required reviewers and a deployment rule for main, and run the apply job in it."
  value       = module.github_oidc.apply_environments
}

output "release_role_arn" {
  description = "Role for release.yml: push the image to this environment's ECR repository, nothing else; null without release environments."
  value       = module.github_oidc.release_role_arn
}

output "github_release_environments" {
  description = "GitHub environments the release role trusts (a tag rule v*, no reviewers: publishing an image deploys nothing)."
  value       = var.github_release_environments
}

output "github_plan_environments" {
  description = "GitHub environments the plan role trusts: create each with required reviewers, and run the plan job in it. Empty: the role trusts pull requests."
  value       = module.github_oidc.plan_environments
}

output "db_endpoint" {
  description = "PostgreSQL host (Helm values: database host)."
  value       = module.rds.endpoint
}

output "db_name" {
  description = "PostgreSQL database name."
  value       = module.rds.database_name
}

output "db_secret_arn" {
  description = "Secrets Manager ARN of the RDS-managed master credentials, the schema owner's (Helm externalSecret.database.remoteKey: only the migration Job connects with them)."
  value       = module.rds.master_secret_arn
}

output "db_app_secret_arn" {
  description = "Secrets Manager ARN of the service role's credentials, JSON {username, password}, value set by scripts/db-app-password.sh (Helm externalSecret.database.appRemoteKey: the pods connect with them)."
  value       = module.rds.app_secret_arn
}

output "db_app_username" {
  description = "Base name of the PostgreSQL roles the service logs in as (DML only): db_app_secret_arn names it or the same with _b, alternately."
  value       = module.rds.app_username
}

output "service_role_arn" {
  description = "IAM role bound to the service account via EKS Pod Identity (informational; no annotation needed)."
  value       = module.service_identity.role_arn
}

output "service_account" {
  description = "Namespace and service account the Helm release must use."
  value       = module.service_identity.service_account
}

output "nat_gateway_count" {
  description = "Number of NAT gateways."
  value       = module.network.nat_gateway_count
}

output "environment_settings" {
  description = "What differs between environments, read back from the planned resources (for the per-environment tests and reviews)."
  value = {
    names = {
      cluster        = module.eks.cluster_name
      ecr_repository = module.ecr.repository_name
    }
    vpc_cidr               = module.network.vpc_cidr_block
    nodes                  = module.eks.sizing
    database               = module.rds.sizing
    db_deletion_protection = module.rds.security_posture.deletion_protection
    db_multi_az            = module.rds.security_posture.multi_az
    db_final_snapshot      = !module.rds.security_posture.skip_final_snapshot
    ecr_force_delete       = module.ecr.security_posture.force_delete
    deploy_trust_policy    = module.github_oidc.deploy_trust_policy
    plan_trust_policy      = module.github_oidc.plan_trust_policy
    apply_trust_policy     = module.github_oidc.apply_trust_policy
    release_trust_policy   = module.github_oidc.release_trust_policy
  }
}
