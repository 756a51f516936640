mock_provider "aws" {
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/keel-rds-monitoring" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:keel-staging/db-app-AbCdEf" }
  }
  mock_resource "aws_db_instance" {
    defaults = {
      arn = "arn:aws:rds:eu-west-1:123456789012:db:keel"
      master_user_secret = [{
        secret_arn    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-123456"
        kms_key_id    = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
        secret_status = "active"
      }]
    }
  }
}

variables {
  name                       = "keel-staging"
  environment                = "staging"
  vpc_id                     = "vpc-0123456789abcdef0"
  subnet_ids                 = ["subnet-a", "subnet-b", "subnet-c"]
  allowed_security_group_ids = ["sg-0123456789abcdef0"]
  tags                       = { project = "keel" }
}

run "staging_security" {
  command = plan

  assert {
    condition     = aws_db_instance.this.engine == "postgres" && startswith(aws_db_instance.this.engine_version, "17")
    error_message = "Database must be PostgreSQL 17."
  }
  assert {
    condition     = !aws_db_instance.this.publicly_accessible
    error_message = "Database must not be publicly accessible."
  }
  assert {
    condition     = aws_db_instance.this.storage_encrypted && aws_db_instance.this.kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    error_message = "Storage must be encrypted with the customer-managed KMS key."
  }
  assert {
    condition     = length(aws_kms_key.this) == 1 && aws_kms_key.this[0].enable_key_rotation
    error_message = "A rotating CMK must be created when none is given (checkov does not see this conditional key)."
  }
  assert {
    condition     = aws_db_instance.this.manage_master_user_password
    error_message = "Master password must be managed in Secrets Manager."
  }
  assert {
    condition     = aws_db_instance.this.password == null
    error_message = "No plaintext master password may be set."
  }
  assert {
    condition     = anytrue([for p in aws_db_parameter_group.this.parameter : p.name == "rds.force_ssl" && p.value == "1"])
    error_message = "rds.force_ssl must be 1."
  }
  assert {
    condition     = aws_db_instance.this.backup_retention_period >= 7
    error_message = "Automated backups (PITR) must be retained at least 7 days."
  }
  assert {
    condition     = aws_db_instance.this.performance_insights_enabled
    error_message = "Performance Insights must be enabled."
  }
  assert {
    condition     = contains(aws_db_instance.this.enabled_cloudwatch_logs_exports, "postgresql")
    error_message = "PostgreSQL logs must be exported."
  }
  assert {
    condition     = !aws_db_instance.this.multi_az && !aws_db_instance.this.deletion_protection
    error_message = "Staging is single-AZ without deletion protection."
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.postgres) == 1 && aws_vpc_security_group_ingress_rule.postgres[0].referenced_security_group_id == "sg-0123456789abcdef0" && aws_vpc_security_group_ingress_rule.postgres[0].cidr_ipv4 == null
    error_message = "Ingress only from referenced security groups, never CIDRs."
  }
  assert {
    condition     = aws_db_instance.this.tags["project"] == "keel"
    error_message = "Tags must be applied."
  }
}

# The policy as the key gets it (jsondecode of the planned policy), not its inputs.
run "key_policy_is_the_accounts_alone" {
  command = plan

  assert {
    condition     = jsondecode(aws_kms_key.this[0].policy).Version == "2012-10-17" && one([for s in jsondecode(aws_kms_key.this[0].policy).Statement : s if s.Sid == "AccountAdmin"]) == { Sid = "AccountAdmin", Effect = "Allow", Principal = { AWS = "arn:aws:iam::123456789012:root" }, Action = ["kms:*"], Resource = "*" }
    error_message = "The account root administers the key without conditions, so IAM policies in the account can grant its use."
  }
  assert {
    condition     = [for s in jsondecode(aws_kms_key.this[0].policy).Statement : try(s.Principal, "*")] == [{ AWS = "arn:aws:iam::123456789012:root" }]
    error_message = "The key policy names no principal but the account root: RDS, Secrets Manager and the service use the key through IAM policies and grants, not the key policy."
  }
}

run "production_hardening" {
  command = plan

  variables {
    name        = "keel-production"
    environment = "production"
  }

  assert {
    condition     = aws_db_instance.this.deletion_protection
    error_message = "Production must have deletion protection."
  }
  assert {
    condition     = aws_db_instance.this.multi_az
    error_message = "Production must be multi-AZ."
  }
  assert {
    condition     = !aws_db_instance.this.skip_final_snapshot
    error_message = "Production must take a final snapshot."
  }
}

run "secret_output" {
  command = plan

  assert {
    condition     = startswith(output.master_secret_arn, "arn:aws:secretsmanager:")
    error_message = "The master secret ARN must be exported."
  }
}

run "app_role_secret" {
  command = plan

  assert {
    condition     = aws_secretsmanager_secret.app.name == "keel-staging/db-app" && startswith(output.app_secret_arn, "arn:aws:secretsmanager:") && output.app_secret_arn != output.master_secret_arn
    error_message = "The app role has a secret of its own, apart from the master secret, and its ARN is exported."
  }
  assert {
    condition     = aws_secretsmanager_secret.app.kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" && output.security_posture.app_secret_kms_key_id == output.kms_key_arn
    error_message = "The app role's secret is encrypted with the module's KMS key, like the master secret."
  }
  assert {
    condition     = output.app_username == "keel_app" && aws_secretsmanager_secret.app.tags["keel:db-username"] == "keel_app"
    error_message = "The service logs in as keel_app by default, and the secret names that user for scripts/db-app-password.sh."
  }
  assert {
    condition     = aws_secretsmanager_secret.app.tags["project"] == "keel"
    error_message = "Tags must be applied to the app role's secret."
  }
  assert {
    condition     = aws_secretsmanager_secret.app.recovery_window_in_days == 0
    error_message = "Staging deletes the secret at once, so a rebuilt staging can reuse the name."
  }
}

run "production_keeps_a_deleted_app_secret_recoverable" {
  command = plan

  variables {
    name        = "keel-production"
    environment = "production"
  }

  assert {
    condition     = aws_secretsmanager_secret.app.recovery_window_in_days == 30
    error_message = "Production keeps a deleted app secret recoverable for 30 days."
  }
}

run "rejects_app_role_as_master" {
  command = plan

  variables {
    app_username = "keel_admin"
  }

  expect_failures = [var.app_username]
}

run "rejects_alternate_app_role_as_master" {
  command = plan

  variables {
    master_username = "keel_app_b"
  }

  expect_failures = [var.app_username]
}

# scripts/db-app-password.sh alternates between app_username and app_username_b, and PostgreSQL
# truncates names beyond 63 characters: 61 is the longest base name whose alternate still fits.
run "accepts_longest_app_role_base_name" {
  command = plan

  variables {
    app_username = "keel_app_with_a_base_name_of_sixty_one_characters_long_enough"
  }

  assert {
    condition     = length(var.app_username) == 61 && aws_secretsmanager_secret.app.tags["keel:db-username"] == var.app_username
    error_message = "A 61-character base name is accepted and tagged on the secret for scripts/db-app-password.sh."
  }
}

run "rejects_app_role_name_whose_alternate_is_too_long" {
  command = plan

  variables {
    app_username = "keel_app_with_a_base_name_of_sixty_two_characters_long_enough_"
  }

  expect_failures = [var.app_username]
}

run "rejects_reserved_app_role_name" {
  command = plan

  variables {
    app_username = "pg_app"
  }

  expect_failures = [var.app_username]
}

run "rejects_other_engine_version" {
  command = plan

  variables {
    engine_version = "16.4"
  }

  expect_failures = [var.engine_version]
}
