locals {
  environment = "production"
}

provider "aws" {
  region              = var.aws_region
  allowed_account_ids = var.allowed_account_ids

  default_tags {
    tags = merge({
      project     = "keel"
      environment = local.environment
      managed-by  = "terraform"
    }, var.tags)
  }
}

module "stack" {
  source = "../../modules/stack"

  # What makes production production: one NAT gateway per AZ, larger nodes, a multi-AZ,
  # deletion-protected database with a final snapshot, an ECR repository that keeps its images.
  environment          = local.environment
  single_nat_gateway   = false
  vpc_cidr             = "10.30.0.0/16"
  node_instance_types  = ["t3.large"]
  node_min_size        = 3
  node_desired_size    = 3
  node_max_size        = 6
  db_instance_class    = "db.t4g.large"
  db_allocated_storage = 50
  # A production plan runs only in this GitHub environment, after its required reviewers approve
  # (infra/README.md, "The plan role"); the plan role trusts no bare pull request here.
  github_plan_environments = ["production-plan"]
  # release.yml pushes and signs a tag's image in this environment (a tag rule, no reviewers),
  # with a role that can push to ECR and nothing else; deploying it still needs the
  # production environment's reviewers (docs/ci-cd.md).
  github_release_environments = ["release"]

  aws_region                     = var.aws_region
  availability_zones             = var.availability_zones
  github_repository              = var.github_repository
  github_repository_owner_id     = var.github_repository_owner_id
  github_repository_id           = var.github_repository_id
  github_trust_name_subjects     = var.github_trust_name_subjects
  github_deploy_environments     = var.github_deploy_environments
  github_deploy_branches         = var.github_deploy_branches
  github_apply_environments      = var.github_apply_environments
  create_github_oidc_provider    = var.create_github_oidc_provider
  github_oidc_provider_arn       = var.github_oidc_provider_arn
  state_bucket_name              = var.state_bucket_name
  state_kms_key_arn              = var.state_kms_key_arn
  admin_role_arns                = var.admin_role_arns
  kubernetes_version             = var.kubernetes_version
  cluster_endpoint_public_access = var.cluster_endpoint_public_access
  cluster_public_access_cidrs    = var.cluster_public_access_cidrs
  service_namespace              = var.service_namespace
  service_account                = var.service_account
}
