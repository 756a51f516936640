# What makes production production. What every environment shares: modules/stack/tests.
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

run "production_is_zonal_and_protected" {
  command = plan

  assert {
    condition     = output.cluster_name == "keel-production" && module.stack.environment_settings.names.ecr_repository == "keel-production"
    error_message = "Production resources are named keel-production."
  }
  assert {
    condition     = output.nat_gateway_count == 3
    error_message = "Production has one NAT gateway per AZ."
  }
  assert {
    condition     = module.stack.environment_settings.vpc_cidr == "10.30.0.0/16"
    error_message = "Production's VPC is 10.30.0.0/16, apart from staging's."
  }
  assert {
    condition     = module.stack.environment_settings.nodes == { instance_types = tolist(["t3.large"]), min_size = 3, desired_size = 3, max_size = 6 }
    error_message = "Production runs 3 (up to 6) t3.large nodes."
  }
  assert {
    condition     = module.stack.environment_settings.database == { instance_class = "db.t4g.large", allocated_storage = 50 }
    error_message = "Production's database is a db.t4g.large with 50 GiB."
  }
  assert {
    condition     = module.stack.environment_settings.db_deletion_protection
    error_message = "Production database must have deletion protection."
  }
  assert {
    condition     = module.stack.environment_settings.db_multi_az
    error_message = "Production database must be multi-AZ."
  }
  assert {
    condition     = module.stack.environment_settings.db_final_snapshot && !module.stack.environment_settings.ecr_force_delete
    error_message = "Production keeps a final DB snapshot and never force-deletes its images."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production"]
    error_message = "Deploy role trusts only the production environment of acme/keel."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-plan"]
    error_message = "A production plan needs the production-plan environment's reviewers: the plan role trusts no bare pull request."
  }
  assert {
    condition     = output.github_plan_environments == tolist(["production-plan"])
    error_message = "The GitHub environment to create for production plans is an output."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.apply_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-infra"]
    error_message = "The apply role trusts only the production-infra environment (infra.yml's apply job, after its reviewers)."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.release_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:release"]
    error_message = "The release role trusts only the release environment (release.yml on a tag)."
  }
  assert {
    condition     = output.github_apply_environments == tolist(["production-infra"]) && output.github_release_environments == tolist(["release"])
    error_message = "The GitHub environments to create for apply and release are outputs."
  }
}

run "outputs_for_the_deploy_workflow" {
  command = plan

  assert {
    condition     = alltrue([for v in [output.aws_region, output.cluster_name, output.ecr_repository_url, output.deploy_role_arn, output.plan_role_arn, output.github_plan_environments, output.apply_role_arn, output.release_role_arn, output.db_endpoint, output.db_name, output.db_secret_arn, output.db_app_secret_arn, output.db_app_username, output.service_role_arn, output.service_account, output.nat_gateway_count] : v != null])
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
    condition     = jsondecode(module.stack.environment_settings.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production", "repo:acme@1234567/keel@890123456:environment:production"]
    error_message = "The deploy role trusts the production environment in both subject forms, nothing else."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-plan", "repo:acme@1234567/keel@890123456:environment:production-plan"]
    error_message = "The plan role trusts environment:production-plan in both subject forms, nothing else."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.apply_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production-infra", "repo:acme@1234567/keel@890123456:environment:production-infra"]
    error_message = "The apply role trusts environment:production-infra in both subject forms, nothing else."
  }
  assert {
    condition     = jsondecode(module.stack.environment_settings.release_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:release", "repo:acme@1234567/keel@890123456:environment:release"]
    error_message = "The release role trusts environment:release in both subject forms, nothing else."
  }
}
