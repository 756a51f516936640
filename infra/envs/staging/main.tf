locals {
  environment = "staging"
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

  # What makes staging staging: one shared NAT gateway, small nodes, a single-AZ database
  # without deletion protection, an ECR repository that may be deleted with its images.
  environment          = local.environment
  single_nat_gateway   = true
  vpc_cidr             = "10.20.0.0/16"
  node_instance_types  = ["t3.medium"]
  node_min_size        = 2
  node_desired_size    = 2
  node_max_size        = 3
  db_instance_class    = "db.t4g.medium"
  db_allocated_storage = 20

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
