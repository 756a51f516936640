mock_provider "aws" {
  override_during = plan

  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012", arn = "arn:aws:iam::123456789012:user/ci" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/keel-production-mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/mock" }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
  }
  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:eu-west-1:123456789012:repository/keel-production"
      repository_url = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/keel-production"
    }
  }
  mock_resource "aws_eks_cluster" {
    defaults = {
      arn      = "arn:aws:eks:eu-west-1:123456789012:cluster/keel-production"
      endpoint = "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
      identity = [{ oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" }] }]
    }
  }
  mock_resource "aws_launch_template" {
    defaults = { id = "lt-0123456789abcdef0", latest_version = 1 }
  }
  mock_resource "aws_vpc" {
    defaults = { id = "vpc-0123456789abcdef0" }
  }
  mock_resource "aws_db_instance" {
    defaults = {
      master_user_secret = [{
        secret_arn    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-123456"
        kms_key_id    = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
        secret_status = "active"
      }]
    }
  }
}

variables {
  aws_region          = "eu-west-1"
  allowed_account_ids = ["123456789012"]
  availability_zones  = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  github_repository   = "acme/keel"
  state_bucket_name   = "acme-keel-tfstate"
  admin_role_arns     = ["arn:aws:iam::123456789012:role/platform-admin"]
}

run "production_network_is_zonal_and_private" {
  command = plan

  assert {
    condition     = output.nat_gateway_count == 3
    error_message = "Production has one NAT gateway per AZ."
  }
  assert {
    condition     = module.eks.security_posture.endpoint_private_access && !module.eks.security_posture.endpoint_public_access
    error_message = "The EKS API is private by default."
  }
  assert {
    condition     = module.eks.security_posture.secrets_kms_key_arn != null && module.eks.security_posture.authentication_mode == "API"
    error_message = "EKS secrets are KMS encrypted and access is via access entries."
  }
}

run "production_database" {
  command = plan

  assert {
    condition     = !module.rds.security_posture.publicly_accessible
    error_message = "The database must not be public."
  }
  assert {
    condition     = module.rds.security_posture.storage_encrypted && module.rds.security_posture.manage_master_user_password && module.rds.security_posture.force_ssl == "1"
    error_message = "Encrypted storage, managed master password and forced TLS."
  }
  assert {
    condition     = module.rds.security_posture.deletion_protection
    error_message = "Production database must have deletion protection."
  }
  assert {
    condition     = module.rds.security_posture.multi_az
    error_message = "Production database must be multi-AZ."
  }
  assert {
    condition     = startswith(output.db_secret_arn, "arn:aws:secretsmanager:")
    error_message = "The DB secret ARN must be exported for the deploy workflow."
  }
}

run "production_supply_chain" {
  command = plan

  assert {
    condition     = module.ecr.security_posture.image_tag_mutability == "IMMUTABLE" && module.ecr.security_posture.scan_on_push
    error_message = "ECR is immutable and scans on push."
  }
  assert {
    condition     = jsondecode(module.github_oidc.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production"]
    error_message = "Deploy role trusts only the production environment of acme/keel."
  }
  assert {
    condition     = jsondecode(module.github_oidc.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:pull_request"]
    error_message = "Plan role trusts only pull requests of acme/keel."
  }
  assert {
    condition     = startswith(output.ecr_repository_url, "123456789012.dkr.ecr.") && startswith(output.deploy_role_arn, "arn:aws:iam::")
    error_message = "Deploy workflow outputs must be present."
  }
}

run "production_public_endpoint_needs_allowlist" {
  command = plan

  variables {
    cluster_endpoint_public_access = true
  }

  expect_failures = [var.cluster_public_access_cidrs]
}
