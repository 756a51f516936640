# One Keel environment: network, EKS, PostgreSQL, ECR, GitHub OIDC roles and the service's
# workload identity. envs/staging and envs/production call this with what differs.

locals {
  name = "keel-${var.environment}"
}

data "aws_partition" "current" {}

module "network" {
  source = "../network"

  name               = local.name
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  cluster_name       = local.name
}

module "ecr" {
  source = "../ecr"

  name         = local.name
  force_delete = var.environment != "production"
}

module "eks" {
  source = "../eks"

  cluster_name           = local.name
  kubernetes_version     = var.kubernetes_version
  vpc_id                 = module.network.vpc_id
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.cluster_endpoint_public_access
  public_access_cidrs    = var.cluster_public_access_cidrs
  admin_role_arns        = var.admin_role_arns
  deploy_role_arn        = module.github_oidc.deploy_role_arn
  deploy_namespaces      = [var.service_namespace]
  node_instance_types    = var.node_instance_types
  node_min_size          = var.node_min_size
  node_desired_size      = var.node_desired_size
  node_max_size          = var.node_max_size
}

# environment = "production" turns on multi-AZ, deletion protection and a final snapshot.
module "rds" {
  source = "../rds"

  name                       = local.name
  environment                = var.environment
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  instance_class             = var.db_instance_class
  allocated_storage          = var.db_allocated_storage
}

module "github_oidc" {
  source = "../github-oidc"

  name                       = local.name
  github_repository          = var.github_repository
  github_repository_owner_id = var.github_repository_owner_id
  github_repository_id       = var.github_repository_id
  trust_name_subjects        = var.github_trust_name_subjects
  deploy_environments        = var.github_deploy_environments != null ? var.github_deploy_environments : [var.environment]
  deploy_branches            = var.github_deploy_branches
  plan_environments          = var.github_plan_environments
  apply_environments         = var.github_apply_environments != null ? var.github_apply_environments : ["${var.environment}-infra"]
  release_environments       = var.github_release_environments
  create_oidc_provider       = var.create_github_oidc_provider
  oidc_provider_arn          = var.github_oidc_provider_arn
  ecr_repository_arn         = module.ecr.repository_arn
  ecr_kms_key_arn            = module.ecr.kms_key_arn
  eks_cluster_arn            = module.eks.cluster_arn
  state_bucket_arn           = "arn:${data.aws_partition.current.partition}:s3:::${var.state_bucket_name}"
  state_key_prefix           = "${var.environment}/"
  state_kms_key_arn          = var.state_kms_key_arn
}

module "service_identity" {
  source = "../workload-identity"

  name            = local.name
  cluster_name    = module.eks.cluster_name
  namespace       = var.service_namespace
  service_account = var.service_account
  # Whatever fills the pods' Secret and the migration Job's reads both: the app role's secret
  # builds APP__DATABASE__URL, the master secret APP__DATABASE__MIGRATION_URL.
  secret_arns  = [module.rds.master_secret_arn, module.rds.app_secret_arn]
  kms_key_arns = [module.rds.kms_key_arn]
}
