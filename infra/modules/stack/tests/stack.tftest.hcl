# What every environment shares. envs/*/tests assert what differs.
mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

# Not any environment's values: the wiring run checks that each one arrives where it belongs.
variables {
  environment          = "staging"
  single_nat_gateway   = false
  vpc_cidr             = "10.40.0.0/16"
  node_instance_types  = ["t3.small"]
  node_min_size        = 1
  node_desired_size    = 2
  node_max_size        = 4
  db_instance_class    = "db.t4g.micro"
  db_allocated_storage = 30

  aws_region         = "eu-west-1"
  availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  github_repository  = "acme/keel"
  state_bucket_name  = "acme-keel-tfstate"
  admin_role_arns    = ["arn:aws:iam::123456789012:role/platform-admin"]
}

run "cluster_is_private" {
  command = plan

  assert {
    condition     = module.eks.security_posture.endpoint_private_access && !module.eks.security_posture.endpoint_public_access
    error_message = "The EKS API is private by default."
  }
  assert {
    condition     = module.eks.security_posture.secrets_kms_key_arn != null && module.eks.security_posture.authentication_mode == "API"
    error_message = "EKS secrets are KMS encrypted and access is via access entries."
  }
}

run "database" {
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
    condition     = startswith(output.db_secret_arn, "arn:aws:secretsmanager:")
    error_message = "The DB secret ARN must be exported for the deploy workflow."
  }
  assert {
    condition     = startswith(output.db_app_secret_arn, "arn:aws:secretsmanager:") && output.db_app_secret_arn != output.db_secret_arn && output.db_app_username == "keel_app"
    error_message = "The app role (keel_app) has its own secret, apart from the master secret, exported for the Helm values."
  }
  assert {
    condition     = module.rds.security_posture.app_secret_kms_key_id == module.rds.kms_key_arn
    error_message = "The app role's secret is encrypted with the database's KMS key."
  }
}

# Both database secrets are read by the one principal that fills the Kubernetes Secrets.
run "service_identity_reads_both_database_secrets" {
  command = plan

  assert {
    condition     = toset(jsondecode(module.service_identity.secrets_policy).Statement[0].Resource) == toset([output.db_secret_arn, output.db_app_secret_arn])
    error_message = "The workload identity reads exactly the master and the app role's secrets."
  }
  assert {
    condition     = contains(jsondecode(module.service_identity.secrets_policy).Statement[1].Resource, module.rds.security_posture.app_secret_kms_key_id)
    error_message = "The workload identity may decrypt (through Secrets Manager) with the key of the app role's secret."
  }
}

run "supply_chain" {
  command = plan

  assert {
    condition     = module.ecr.security_posture.image_tag_mutability == "IMMUTABLE" && module.ecr.security_posture.scan_on_push
    error_message = "ECR is immutable and scans on push."
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

# How the modules are wired to each other.
run "wiring" {
  command = plan

  assert {
    condition     = module.eks.sizing == { instance_types = tolist(["t3.small"]), min_size = 1, desired_size = 2, max_size = 4 }
    error_message = "Node types and sizes reach the node group."
  }
  assert {
    condition     = module.rds.sizing == { instance_class = "db.t4g.micro", allocated_storage = 30 }
    error_message = "Database class and storage reach the instance."
  }
  assert {
    condition     = output.environment_settings.vpc_cidr == "10.40.0.0/16" && output.nat_gateway_count == 3
    error_message = "CIDR and NAT mode reach the network, independent of the environment."
  }
  assert {
    condition     = output.service_account == { namespace = "keel", name = "keel" }
    error_message = "The service identity is bound to keel/keel by default."
  }
}

run "deploy_environment_defaults_to_the_environment" {
  command = plan

  variables {
    environment = "production"
  }

  assert {
    condition     = jsondecode(module.github_oidc.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:production"]
    error_message = "Without github_deploy_environments the deploy role trusts the GitHub environment named like this one."
  }
}

run "optional_inputs_accept_null" {
  command = plan

  # What an envs/* root passes when terraform.tfvars leaves an optional value out.
  variables {
    github_deploy_environments     = null
    github_deploy_branches         = null
    github_plan_environments       = null
    github_repository_owner_id     = null
    github_repository_id           = null
    github_trust_name_subjects     = null
    create_github_oidc_provider    = null
    state_kms_key_arn              = null
    kubernetes_version             = null
    cluster_endpoint_public_access = null
    cluster_public_access_cidrs    = null
    service_namespace              = null
    service_account                = null
  }

  assert {
    condition     = output.service_account == { namespace = "keel", name = "keel" } && module.eks.security_posture.endpoint_public_access == false
    error_message = "null falls back to the stack's defaults."
  }
  assert {
    condition     = length(output.github_plan_environments) == 0 && !strcontains(module.github_oidc.plan_policies["terraform-state"], "kms:")
    error_message = "null: the plan role trusts pull requests and gets no state key."
  }
  assert {
    condition     = jsondecode(module.github_oidc.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:pull_request"]
    error_message = "null ids: the OIDC roles trust the name form only."
  }
}

# The repository ids reach modules/github-oidc: both subject forms, for both roles.
run "github_repository_ids_wiring" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
  }

  assert {
    condition     = jsondecode(output.environment_settings.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:staging", "repo:acme@1234567/keel@890123456:environment:staging"]
    error_message = "The deploy role trusts the environment in the name and the immutable form."
  }
  assert {
    condition     = jsondecode(output.environment_settings.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:pull_request", "repo:acme@1234567/keel@890123456:pull_request"]
    error_message = "The plan role trusts pull requests in the name and the immutable form."
  }
}

run "github_trust_name_subjects_wiring" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "890123456"
    github_trust_name_subjects = false
  }

  assert {
    condition     = jsondecode(output.environment_settings.deploy_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme@1234567/keel@890123456:environment:staging"] && jsondecode(output.environment_settings.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme@1234567/keel@890123456:pull_request"]
    error_message = "github_trust_name_subjects = false leaves only the immutable form."
  }
}

run "rejects_non_numeric_github_repository_id" {
  command = plan

  variables {
    github_repository_owner_id = "1234567"
    github_repository_id       = "keel"
  }

  expect_failures = [var.github_repository_id]
}

# The plan role's gate and state access arrive in modules/github-oidc.
run "plan_role_wiring" {
  command = plan

  variables {
    github_plan_environments = ["staging-plan"]
    state_kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/99999999-8888-7777-6666-555555555555"
  }

  assert {
    condition     = jsondecode(output.environment_settings.plan_trust_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/keel:environment:staging-plan"] && output.github_plan_environments == tolist(["staging-plan"])
    error_message = "github_plan_environments gates the plan role and is an output."
  }
  assert {
    condition     = one([for s in jsondecode(module.github_oidc.plan_policies["terraform-state"]).Statement : s.Resource if s.Sid == "ReadState"]) == "arn:aws:s3:::acme-keel-tfstate/staging/*"
    error_message = "The plan role reads the state under the environment's prefix only."
  }
  assert {
    condition     = one([for s in jsondecode(module.github_oidc.plan_policies["terraform-state"]).Statement : s.Resource if s.Sid == "StateKms"]) == "arn:aws:kms:eu-west-1:123456789012:key/99999999-8888-7777-6666-555555555555"
    error_message = "state_kms_key_arn reaches the plan role's state policy."
  }
  assert {
    condition     = one([for s in jsondecode(module.github_oidc.plan_policies["terraform-plan-read"]).Statement : s.Resource if s.Sid == "Registry"]) == module.ecr.repository_arn
    error_message = "The plan role's ECR reads are scoped to the environment's repository."
  }
}

run "public_endpoint_needs_allowlist" {
  command = plan

  variables {
    cluster_endpoint_public_access = true
  }

  expect_failures = [var.cluster_public_access_cidrs]
}
