mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/keel-github" }
  }
}

variables {
  name                = "keel-production"
  github_repository   = "acme/keel"
  deploy_environments = ["production"]
  ecr_repository_arn  = "arn:aws:ecr:eu-west-1:123456789012:repository/keel"
  ecr_kms_key_arn     = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  eks_cluster_arn     = "arn:aws:eks:eu-west-1:123456789012:cluster/keel-production"
  state_bucket_arn    = "arn:aws:s3:::acme-keel-tfstate"
  state_key_prefix    = "production/"
  tags                = { project = "keel" }
}

run "deploy_trust_pins_repository_environment" {
  command = plan

  assert {
    condition     = jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production"]
    error_message = "Deploy role must trust only the repository's production environment."
  }
  assert {
    condition     = jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    error_message = "Audience must be pinned to sts.amazonaws.com."
  }
  assert {
    condition     = !can(jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringLike)
    error_message = "No StringLike (wildcard) trust conditions."
  }
  assert {
    condition     = length(jsondecode(aws_iam_role.deploy.assume_role_policy).Statement) == 1 && jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Principal.Federated == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    error_message = "Only the GitHub OIDC provider may assume the deploy role."
  }
}

run "plan_role_pull_requests_only" {
  command = plan

  assert {
    condition     = jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:pull_request"]
    error_message = "Plan role must trust only pull requests of this repository."
  }
  assert {
    condition     = endswith(aws_iam_role_policy_attachment.plan_read_only.policy_arn, ":policy/ReadOnlyAccess")
    error_message = "Plan role is read-only."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : !contains(s.Action, "s3:PutObject") || endswith(s.Resource, ".tflock")])
    error_message = "Plan role may only write lock files."
  }
}

run "deploy_least_privilege" {
  command = plan

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.deploy.policy).Statement : s.Resource != "*" || s.Action == ["ecr:GetAuthorizationToken"]])
    error_message = "Only ecr:GetAuthorizationToken may use Resource \"*\"."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.deploy.policy).Statement : s.Resource if s.Sid == "EcrPush"]) == "arn:aws:ecr:eu-west-1:123456789012:repository/keel"
    error_message = "ECR push is limited to the service repository."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.deploy.policy).Statement : s.Resource if s.Sid == "EksDescribe"]) == "arn:aws:eks:eu-west-1:123456789012:cluster/keel-production"
    error_message = "EKS access is limited to the one cluster."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.deploy.policy).Statement : !anytrue([for a in flatten([s.Action]) : endswith(a, "*")])])
    error_message = "No wildcard actions in the deploy policy."
  }
}

run "branch_subjects" {
  command = plan

  variables {
    deploy_environments = []
    deploy_branches     = ["main"]
  }

  assert {
    condition     = jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:ref:refs/heads/main"]
    error_message = "Branch subject must be exact."
  }
}

run "requires_subjects" {
  command = plan

  variables {
    deploy_environments = []
    deploy_branches     = []
  }

  expect_failures = [aws_iam_role.deploy]
}

run "rejects_wildcard_repository" {
  command = plan

  variables {
    github_repository = "acme/*"
  }

  expect_failures = [var.github_repository]
}

run "rejects_wildcard_branch" {
  command = plan

  variables {
    deploy_branches = ["release/*"]
  }

  expect_failures = [var.deploy_branches]
}
