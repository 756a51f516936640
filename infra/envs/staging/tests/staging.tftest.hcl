# What makes staging staging. What every environment shares: modules/stack/tests.
mock_provider "aws" {
  override_during = plan
  source          = "../../modules/stack/tests/mocks"
}

variables {
  aws_region          = "eu-west-1"
  allowed_account_ids = ["123456789012"]
  availability_zones  = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  github_repository   = "acme/keel"
  state_bucket_name   = "acme-keel-tfstate"
  admin_role_arns     = ["arn:aws:iam::123456789012:role/platform-admin"]
}

run "staging_is_small_and_disposable" {
  command = plan

  assert {
    condition     = output.cluster_name == "keel-staging" && module.stack.environment_settings.names.ecr_repository == "keel-staging"
    error_message = "Staging resources are named keel-staging."
  }
  assert {
    condition     = output.nat_gateway_count == 1
    error_message = "Staging uses a single NAT gateway."
  }
  assert {
    condition     = module.stack.environment_settings.vpc_cidr == "10.20.0.0/16"
    error_message = "Staging's VPC is 10.20.0.0/16."
  }
  assert {
    condition     = module.stack.environment_settings.nodes == { instance_types = tolist(["t3.medium"]), min_size = 2, desired_size = 2, max_size = 3 }
    error_message = "Staging runs 2 (up to 3) t3.medium nodes."
  }
  assert {
    condition     = module.stack.environment_settings.database == { instance_class = "db.t4g.medium", allocated_storage = 20 }
    error_message = "Staging's database is a db.t4g.medium with 20 GiB."
  }
  assert {
    condition     = !module.stack.environment_settings.db_deletion_protection && !module.stack.environment_settings.db_multi_az
    error_message = "Staging database is single-AZ and disposable."
  }
  assert {
    condition     = !module.stack.environment_settings.db_final_snapshot && module.stack.environment_settings.ecr_force_delete
    error_message = "Tearing staging down leaves no final snapshot and may delete the images."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:staging"]
    error_message = "Deploy role trusts only the staging environment of acme/keel."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:pull_request"] && length(output.github_plan_environments) == 0
    error_message = "Staging plans run on pull requests without an approval gate."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.apply_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:staging-infra"] && output.github_apply_environments == tolist(["staging-infra"])
    error_message = "The apply role trusts only the staging-infra environment, which is an output."
  }
  assert {
    condition     = output.release_role_arn == null && module.stack.environment_settings.release_trust_policy == null && length(output.github_release_environments) == 0
    error_message = "Staging has no release role: its images are pushed by the deploy job (environment staging)."
  }
}

run "outputs_for_the_deploy_workflow" {
  command = plan

  assert {
    condition     = alltrue([for v in [output.aws_region, output.cluster_name, output.ecr_repository_url, output.deploy_role_arn, output.plan_role_arn, output.github_plan_environments, output.apply_role_arn, output.db_endpoint, output.db_name, output.db_secret_arn, output.db_app_secret_arn, output.db_app_username, output.service_role_arn, output.service_account, output.nat_gateway_count] : v != null])
    error_message = "Every output infra/README.md names must be set."
  }
}

# With the ids from terraform.tfvars the roles also trust GitHub's immutable subjects.
run "immutable_subjects" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
  }

  assert {
    condition     = jsondecode(module.stack.environment_settings.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:staging", "repo:acme@1234567/keel@890123456:environment:staging"]
    error_message = "The deploy role trusts the staging environment in both subject forms, nothing else."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:pull_request", "repo:acme@1234567/keel@890123456:pull_request"]
    error_message = "The plan role trusts pull_request in both subject forms, nothing else."
  }
}
