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
    error_message = "Without plan_environments the plan role trusts only pull requests of this repository."
  }
  assert {
    condition     = !can(jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringLike) && jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    error_message = "Plan trust: audience pinned, no StringLike (wildcard) conditions."
  }
  assert {
    condition     = length(output.plan_environments) == 0 && output.plan_subjects == tolist(["repo:acme/keel:pull_request"])
    error_message = "Outputs name no plan environment and the pull_request subject."
  }
}

# The protected-environment gate: production plans wait for the environment's reviewers.
run "plan_role_trusts_only_the_plan_environment" {
  command = plan

  variables {
    plan_environments = ["production-plan"]
  }

  assert {
    condition     = jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-plan"]
    error_message = "With plan_environments the plan role trusts only jobs of those environments."
  }
  assert {
    condition     = !anytrue([for s in jsondecode(aws_iam_role.plan.assume_role_policy).Statement : contains(flatten([s.Condition.StringEquals["token.actions.githubusercontent.com:sub"]]), "repo:acme/keel:pull_request")])
    error_message = "A pull request without the environment's approval must not get the plan role."
  }
  assert {
    condition     = output.plan_environments == tolist(["production-plan"])
    error_message = "The environment to create in GitHub is an output."
  }
}

run "rejects_wildcard_plan_environment" {
  command = plan

  variables {
    plan_environments = ["production-*"]
  }

  expect_failures = [var.plan_environments]
}

run "rejects_empty_plan_environment" {
  command = plan

  variables {
    plan_environments = [""]
  }

  expect_failures = [var.plan_environments]
}

run "rejects_plan_environment_that_deploys" {
  command = plan

  variables {
    plan_environments = ["production"]
  }

  expect_failures = [var.plan_environments]
}

run "plan_role_has_no_managed_policies" {
  command = plan

  assert {
    condition     = length(aws_iam_role_policy_attachments_exclusive.plan.policy_arns) == 0 && aws_iam_role_policy_attachments_exclusive.plan.role_name == aws_iam_role.plan.name
    error_message = "No managed policy (ReadOnlyAccess or any other) may stay attached to the plan role."
  }
  assert {
    condition     = aws_iam_role_policies_exclusive.plan.policy_names == toset(["terraform-plan-read", "terraform-state"]) && aws_iam_role_policies_exclusive.plan.role_name == aws_iam_role.plan.name
    error_message = "The plan role's inline policies are exactly the read and state policies."
  }
  assert {
    condition     = keys(output.plan_policies) == ["terraform-plan-read", "terraform-state"]
    error_message = "plan_policies lists the role's policies."
  }
}

run "plan_read_policy_names_read_actions" {
  command = plan

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : s.Effect == "Allow" && alltrue([for a in flatten([s.Action]) : !strcontains(a, "*") && !strcontains(a, "?")])])
    error_message = "The plan policy names every action: no wildcards."
  }
  assert {
    condition     = alltrue(flatten([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : [for a in flatten([s.Action]) : can(regex("^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]+$", a))]]))
    error_message = "The plan policy only reads (Describe, Get, List)."
  }
  assert {
    condition     = !anytrue(flatten([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : [for a in flatten([s.Action]) : startswith(a, "s3:")]]))
    error_message = "The read policy grants nothing on S3: state access lives in terraform-state alone."
  }
  assert {
    condition     = length(setintersection(flatten([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : flatten([s.Action])]), ["secretsmanager:GetSecretValue", "kms:Decrypt", "ssm:GetParameter", "ssm:GetParameters", "logs:GetLogEvents", "logs:FilterLogEvents", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:GetAuthorizationToken", "eks:AccessKubernetesApi"])) == 0
    error_message = "No secret values, decryption, log contents, images or Kubernetes API."
  }
}

run "plan_read_policy_covers_the_refresh" {
  command = plan

  # One read per resource type the modules create, from each service.
  assert {
    condition = length(setsubtract([
      "sts:GetCallerIdentity",
      "ec2:DescribeAvailabilityZones", "ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:DescribeSubnets", "ec2:DescribeRouteTables",
      "ec2:DescribeNatGateways", "ec2:DescribeAddresses", "ec2:DescribeInternetGateways", "ec2:DescribeSecurityGroups",
      "ec2:DescribeSecurityGroupRules", "ec2:DescribeFlowLogs", "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
      "eks:DescribeCluster", "eks:DescribeNodegroup", "eks:DescribeAddon", "eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies",
      "eks:DescribePodIdentityAssociation",
      "rds:DescribeDBInstances", "rds:DescribeDBParameterGroups", "rds:DescribeDBParameters", "rds:DescribeDBSubnetGroups", "rds:ListTagsForResource",
      "ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource",
      "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:GetOpenIDConnectProvider",
      "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags",
      "logs:DescribeLogGroups", "logs:ListTagsForResource",
      "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy",
    ], flatten([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : flatten([s.Action])]))) == 0
    error_message = "The plan policy must let terraform plan refresh every resource type Keel creates."
  }
}

run "plan_read_policy_scoped_to_the_environment" {
  command = plan

  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : s.Resource if s.Sid == "Registry"]) == "arn:aws:ecr:eu-west-1:123456789012:repository/keel"
    error_message = "ECR reads are limited to the service repository."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : s.Resource if s.Sid == "Cluster"]) == ["arn:aws:eks:eu-west-1:123456789012:cluster/keel-production", "arn:aws:eks:eu-west-1:123456789012:*/keel-production/*"]
    error_message = "EKS reads are limited to the cluster and its sub-resources."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : s.Resource if s.Sid == "Roles"]) == "arn:aws:iam::123456789012:role/keel-production-*"
    error_message = "IAM reads are limited to the environment's roles."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : s.Resource if s.Sid == "SecretMetadata"]) == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:keel-production/*"
    error_message = "Secret metadata reads are limited to the environment's secrets."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.plan_read.policy).Statement : s.Resource != "*" || contains(["Identity", "NetworkAndNodes", "KeyAliases"], s.Sid)])
    error_message = "Resource \"*\" only for actions without resource-level permissions (STS identity, EC2 Describe, kms:ListAliases)."
  }
}

run "plan_state_scoped_to_the_prefix" {
  command = plan

  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : s if contains(s.Action, "s3:ListBucket")]).Condition.StringLike["s3:prefix"] == ["production/*"]
    error_message = "Listing the bucket is limited to the state prefix."
  }
  assert {
    condition     = alltrue(flatten([for p in values(output.plan_policies) : [for s in jsondecode(p).Statement : [for r in flatten([s.Resource]) : startswith(r, "arn:aws:s3:::acme-keel-tfstate/production/") if contains(flatten([s.Action]), "s3:GetObject")]]]))
    error_message = "No s3:GetObject outside the state prefix, in any of the role's policies."
  }
  assert {
    condition     = alltrue(flatten([for p in values(output.plan_policies) : [for s in jsondecode(p).Statement : [for r in flatten([s.Resource]) : r != "*" && !startswith(r, "arn:aws:s3:::*") if anytrue([for a in flatten([s.Action]) : startswith(a, "s3:")])]]]))
    error_message = "No S3 action on Resource \"*\" or on every bucket."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : alltrue([for a in flatten([s.Action]) : !endswith(a, "*")])])
    error_message = "No wildcard actions in the state policy."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : (!contains(s.Action, "s3:PutObject") && !contains(s.Action, "s3:DeleteObject")) || s.Resource == "arn:aws:s3:::acme-keel-tfstate/production/*.tflock"])
    error_message = "The plan role may only write and delete its lockfile."
  }
  assert {
    condition     = !anytrue([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : anytrue([for a in flatten([s.Action]) : startswith(a, "kms:")])])
    error_message = "Without state_kms_key_arn the state policy grants no KMS use."
  }
}

run "plan_state_kms_key" {
  command = plan

  variables {
    state_kms_key_arn = "arn:aws:kms:eu-central-1:123456789012:key/99999999-8888-7777-6666-555555555555"
  }

  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : s.Action if s.Sid == "StateKms"]) == ["kms:Decrypt", "kms:GenerateDataKey"] && one([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : s.Resource if s.Sid == "StateKms"]) == "arn:aws:kms:eu-central-1:123456789012:key/99999999-8888-7777-6666-555555555555"
    error_message = "With state_kms_key_arn the plan role may decrypt the state and encrypt the lockfile with that key alone."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.plan_state[0].policy).Statement : s.Condition if s.Sid == "StateKms"]) == { StringEquals = { "kms:ViaService" = "s3.eu-central-1.amazonaws.com" }, StringLike = { "kms:EncryptionContext:aws:s3:arn" = ["arn:aws:s3:::acme-keel-tfstate", "arn:aws:s3:::acme-keel-tfstate/production/*"] } }
    error_message = "The state key is usable only through S3 (in the key's region) and only for the state bucket."
  }
}

run "no_state_bucket_no_state_access" {
  command = plan

  variables {
    state_bucket_arn = null
  }

  assert {
    condition     = length(aws_iam_role_policy.plan_state) == 0 && aws_iam_role_policies_exclusive.plan.policy_names == toset(["terraform-plan-read"])
    error_message = "Without state_bucket_arn the plan role has the read policy only."
  }
}

run "rejects_empty_state_prefix" {
  command = plan

  variables {
    state_key_prefix = ""
  }

  expect_failures = [var.state_key_prefix]
}

run "rejects_wildcard_state_prefix" {
  command = plan

  variables {
    state_key_prefix = "prod*/"
  }

  expect_failures = [var.state_key_prefix]
}

run "rejects_state_kms_alias" {
  command = plan

  variables {
    state_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:alias/acme-keel-tfstate"
  }

  expect_failures = [var.state_kms_key_arn]
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

# Subject forms (https://docs.github.com/en/actions/reference/security/oidc#immutable-subject-claims):
# the name form repo:OWNER/NAME:<context> (repositories from before 2026-07-15 that have not opted
# in) and the immutable form repo:OWNER@OWNER_ID/NAME@REPO_ID:<context>. The trust policies use
# StringEquals alone (asserted below), so "in the list" is exactly what IAM accepts.

# Without the ids: the name form only, the policy as before the immutable form existed.
run "subjects_name_form_only" {
  command = plan

  variables {
    deploy_branches   = ["main"]
    plan_environments = ["production-plan"]
  }

  assert {
    condition     = jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production", "repo:acme/keel:ref:refs/heads/main"]
    error_message = "Without ids the deploy role trusts the name form of each environment and branch, nothing else."
  }
  assert {
    condition     = jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-plan"]
    error_message = "Without ids the plan role trusts the name form of its environment."
  }
  assert {
    condition     = !anytrue([for s in concat(output.deploy_subjects, output.plan_subjects) : strcontains(s, "@")])
    error_message = "Without ids no subject has the immutable form."
  }
}

# "" (an unset repository variable passed as TF_VAR_...) means unset, like null.
run "subjects_empty_ids_are_the_name_form" {
  command = plan

  variables {
    github_repository_owner_id = ""
    github_repository_id       = ""
  }

  assert {
    condition     = output.deploy_subjects == tolist(["repo:acme/keel:environment:production"]) && output.plan_subjects == tolist(["repo:acme/keel:pull_request"])
    error_message = "Empty ids: the name form only."
  }
}

# The ids alone (trust_name_subjects = false): what a repository whose tokens carry the ids needs.
run "subjects_id_form_only" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
    trust_name_subjects        = false
  }

  assert {
    condition     = jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme@1234567/keel@890123456:environment:production"]
    error_message = "The deploy role trusts exactly repo:acme@1234567/keel@890123456:environment:production."
  }
  assert {
    condition     = jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme@1234567/keel@890123456:pull_request"]
    error_message = "The plan role trusts exactly repo:acme@1234567/keel@890123456:pull_request."
  }
  assert {
    condition     = alltrue([for p in [aws_iam_role.deploy.assume_role_policy, aws_iam_role.plan.assume_role_policy] : keys(jsondecode(p).Statement[0].Condition) == ["StringEquals"] && jsondecode(p).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"])
    error_message = "Only StringEquals conditions (no StringLike), audience pinned to sts.amazonaws.com."
  }
  assert {
    condition     = output.deploy_subjects == tolist(["repo:acme@1234567/keel@890123456:environment:production"]) && output.plan_subjects == tolist(["repo:acme@1234567/keel@890123456:pull_request"])
    error_message = "The subject outputs list what the policies trust."
  }
}

# Both forms, for every context of each role: the name form first, then the immutable form.
run "subjects_both_forms" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
    deploy_branches            = ["main"]
  }

  assert {
    condition = jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == [
      "repo:acme/keel:environment:production",
      "repo:acme/keel:ref:refs/heads/main",
      "repo:acme@1234567/keel@890123456:environment:production",
      "repo:acme@1234567/keel@890123456:ref:refs/heads/main",
    ]
    error_message = "The deploy role trusts each environment and branch in both forms, nothing else."
  }
  assert {
    condition     = jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:pull_request", "repo:acme@1234567/keel@890123456:pull_request"]
    error_message = "The plan role trusts pull requests in both forms."
  }
  assert {
    condition     = alltrue([for p in [aws_iam_role.deploy.assume_role_policy, aws_iam_role.plan.assume_role_policy] : length(jsondecode(p).Statement) == 1 && keys(jsondecode(p).Statement[0].Condition) == ["StringEquals"] && jsondecode(p).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"])
    error_message = "One statement per role, StringEquals only, audience pinned."
  }
}

# The plan environment gate holds in both forms: no pull_request subject in either.
run "subjects_both_forms_plan_environment" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
    plan_environments          = ["production-plan"]
  }

  assert {
    condition     = jsondecode(aws_iam_role.plan.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-plan", "repo:acme@1234567/keel@890123456:environment:production-plan"]
    error_message = "With plan_environments the plan role trusts those environments in both forms, and no pull request."
  }
}

# Ids given as numbers (github_repository_id = 890123456 in a tfvars file) render the same.
run "subjects_numeric_ids" {
  command = plan

  variables {
    github_repository_owner_id = 1234567
    github_repository_id       = 890123456
  }

  assert {
    condition     = output.deploy_subjects == tolist(["repo:acme/keel:environment:production", "repo:acme@1234567/keel@890123456:environment:production"])
    error_message = "Numeric ids render as their digits."
  }
}

# Near misses IAM must refuse: another repository of the owner, another owner, other ids, another
# context. With StringEquals only and no wildcard characters, absent from the list means refused.
run "subjects_refuse_near_misses" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
    deploy_branches            = ["main"]
  }

  assert {
    condition = length(setintersection(flatten([for p in [aws_iam_role.deploy.assume_role_policy, aws_iam_role.plan.assume_role_policy] : jsondecode(p).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"]]), [
      "repo:acme/keel-evil:environment:production",
      "repo:acme/keel-evil:pull_request",
      "repo:acme-evil/keel:environment:production",
      "repo:acme@1234567/keel-evil@890123456:environment:production",
      "repo:acme@1234567/keel@890123457:environment:production",
      "repo:acme@7654321/keel@890123456:environment:production",
      "repo:acme@7654321/keel@890123456:pull_request",
      "repo:evil@1234567/keel@890123456:environment:production",
      "repo:acme@1234567/keel@890123456:environment:staging",
      "repo:acme@1234567/keel@890123456:ref:refs/heads/main-evil",
      "repo:acme@1234567/keel@890123456:ref:refs/tags/main",
    ])) == 0
    error_message = "A near-miss repository, owner, id or context must not be in any trust policy."
  }
  assert {
    condition     = !contains(jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"], "repo:acme@1234567/keel@890123456:pull_request")
    error_message = "A pull request (in the immutable form too) must not get the deploy role."
  }
  assert {
    condition     = alltrue([for p in [aws_iam_role.deploy.assume_role_policy, aws_iam_role.plan.assume_role_policy] : keys(jsondecode(p).Statement[0].Condition) == ["StringEquals"] && alltrue([for s in jsondecode(p).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] : can(regex("^repo:acme(@1234567)?/keel(@890123456)?:[A-Za-z0-9:/._-]+$", s)) && !strcontains(s, "*") && !strcontains(s, "?")])])
    error_message = "Every subject is a literal of this owner and repository (and their ids), under StringEquals: no wildcard anywhere."
  }
}

run "rejects_non_numeric_owner_id" {
  command = plan

  variables {
    github_repository_owner_id = "acme"
    github_repository_id       = "890123456"
  }

  expect_failures = [var.github_repository_owner_id]
}

run "rejects_wildcard_repository_id" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "*"
  }

  expect_failures = [var.github_repository_id]
}

run "rejects_repository_id_with_leading_zero" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "0890123456"
  }

  expect_failures = [var.github_repository_id]
}

run "rejects_negative_owner_id" {
  command = plan

  variables {
    github_repository_owner_id = "-1234567"
    github_repository_id       = "890123456"
  }

  expect_failures = [var.github_repository_owner_id]
}

run "rejects_owner_id_without_repository_id" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
  }

  expect_failures = [var.github_repository_id]
}

run "rejects_repository_id_without_owner_id" {
  command = plan

  variables {
    github_repository_id = "890123456"
  }

  expect_failures = [var.github_repository_id]
}

run "rejects_no_name_subjects_without_ids" {
  command = plan

  variables {
    trust_name_subjects = false
  }

  expect_failures = [var.trust_name_subjects]
}

# --- release role: ECR push only, from its own environment ----------------------------------

run "no_release_or_apply_role_by_default" {
  command = plan

  assert {
    condition     = length(aws_iam_role.release) == 0 && length(aws_iam_role.apply) == 0 && length(aws_iam_role_policy_attachment.apply) == 0
    error_message = "Without release_environments / apply_environments the module creates neither role."
  }
  assert {
    condition     = output.release_role_arn == null && output.apply_role_arn == null
    error_message = "The outputs are null without the roles."
  }
}

run "release_role_trusts_only_its_environment_in_both_forms" {
  command = plan

  variables {
    release_environments       = ["release"]
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
  }

  assert {
    condition     = jsondecode(aws_iam_role.release[0].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:release", "repo:acme@1234567/keel@890123456:environment:release"]
    error_message = "The release role trusts exactly the release environment, in the name and the immutable form."
  }
  assert {
    condition     = jsondecode(aws_iam_role.release[0].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com" && !can(jsondecode(aws_iam_role.release[0].assume_role_policy).Statement[0].Condition.StringLike)
    error_message = "Release trust: audience pinned, no StringLike (wildcard) conditions."
  }
  assert {
    condition     = output.release_subjects == tolist(["repo:acme/keel:environment:release", "repo:acme@1234567/keel@890123456:environment:release"])
    error_message = "release_subjects lists what the trust policy trusts."
  }
  assert {
    condition     = !contains(jsondecode(aws_iam_role.deploy.assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"], "repo:acme/keel:environment:release")
    error_message = "The release environment must not get the deploy role."
  }
}

run "release_role_pushes_and_does_nothing_else" {
  command = plan

  variables {
    release_environments = ["release"]
  }

  assert {
    condition     = sort(flatten([for s in jsondecode(aws_iam_role_policy.release[0].policy).Statement : s.Action])) == sort(["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload", "ecr:DescribeImages", "ecr:DescribeImageScanFindings", "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart", "kms:Decrypt", "kms:GenerateDataKey"])
    error_message = "The release role may log in to ECR, push to it and use its KMS key: no EKS, nothing else."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.release[0].policy).Statement : s.Resource != "*" || s.Action == ["ecr:GetAuthorizationToken"]])
    error_message = "Only ecr:GetAuthorizationToken may use Resource \"*\"."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.release[0].policy).Statement : s.Resource if s.Sid == "EcrPush"]) == "arn:aws:ecr:eu-west-1:123456789012:repository/keel"
    error_message = "The release role pushes to the service repository only."
  }
}

run "rejects_release_environment_that_deploys" {
  command = plan

  variables {
    release_environments = ["production"]
  }

  expect_failures = [var.release_environments]
}

run "rejects_wildcard_release_environment" {
  command = plan

  variables {
    release_environments = ["rel*"]
  }

  expect_failures = [var.release_environments]
}

# --- apply role: administrator, from a reviewed environment only ----------------------------

run "apply_role_trusts_only_its_environment_in_both_forms" {
  command = plan

  variables {
    apply_environments         = ["production-infra"]
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
  }

  assert {
    condition     = jsondecode(aws_iam_role.apply[0].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-infra", "repo:acme@1234567/keel@890123456:environment:production-infra"]
    error_message = "The apply role trusts exactly the apply environment, in the name and the immutable form."
  }
  assert {
    condition     = jsondecode(aws_iam_role.apply[0].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com" && !can(jsondecode(aws_iam_role.apply[0].assume_role_policy).Statement[0].Condition.StringLike)
    error_message = "Apply trust: audience pinned, no StringLike (wildcard) conditions."
  }
  assert {
    condition     = length(jsondecode(aws_iam_role.apply[0].assume_role_policy).Statement) == 1 && jsondecode(aws_iam_role.apply[0].assume_role_policy).Statement[0].Principal.Federated == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    error_message = "Only the GitHub OIDC provider may assume the apply role."
  }
  assert {
    condition     = output.apply_subjects == tolist(["repo:acme/keel:environment:production-infra", "repo:acme@1234567/keel@890123456:environment:production-infra"])
    error_message = "apply_subjects lists what the trust policy trusts."
  }
}

run "apply_role_never_trusts_pull_requests_branches_or_tags" {
  command = plan

  variables {
    apply_environments = ["production-infra"]
    deploy_branches    = ["main"]
  }

  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role.apply[0].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] : strcontains(s, ":environment:") && !strcontains(s, "pull_request") && !strcontains(s, ":ref:")])
    error_message = "The apply role trusts environment subjects only: no pull_request, branch or tag subject."
  }
}

run "apply_role_policies" {
  command = plan

  variables {
    apply_environments = ["production-infra"]
  }

  assert {
    condition     = [for a in aws_iam_role_policy_attachment.apply : a.policy_arn] == ["arn:aws:iam::aws:policy/AdministratorAccess"]
    error_message = "By default the apply role has AdministratorAccess and nothing else."
  }
}

run "apply_role_custom_policies" {
  command = plan

  variables {
    apply_environments = ["production-infra"]
    apply_policy_arns  = ["arn:aws:iam::123456789012:policy/keel-apply"]
  }

  assert {
    condition     = [for a in aws_iam_role_policy_attachment.apply : a.policy_arn] == ["arn:aws:iam::123456789012:policy/keel-apply"]
    error_message = "apply_policy_arns replaces the default."
  }
}

run "rejects_apply_environment_that_plans" {
  command = plan

  variables {
    plan_environments  = ["production-plan"]
    apply_environments = ["production-plan"]
  }

  expect_failures = [var.apply_environments]
}

run "rejects_apply_environment_that_deploys" {
  command = plan

  variables {
    apply_environments = ["production"]
  }

  expect_failures = [var.apply_environments]
}

run "rejects_wildcard_apply_environment" {
  command = plan

  variables {
    apply_environments = ["*"]
  }

  expect_failures = [var.apply_environments]
}

run "rejects_apply_policy_that_is_not_an_arn" {
  command = plan

  variables {
    apply_environments = ["production-infra"]
    apply_policy_arns  = ["AdministratorAccess"]
  }

  expect_failures = [var.apply_policy_arns]
}
