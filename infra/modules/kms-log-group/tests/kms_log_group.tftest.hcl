mock_provider "aws" {
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
}

variables {
  log_group_name  = "/vpc/keel-staging/flow-logs"
  key_description = "VPC keel-staging flow logs"
  tags            = { project = "keel" }
}

run "log_group_encrypted_with_own_key" {
  command = plan

  assert {
    condition     = aws_kms_key.this.enable_key_rotation && aws_kms_key.this.deletion_window_in_days == 30
    error_message = "The key rotates and has the 30-day deletion window."
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.kms_key_id == aws_kms_key.this.arn
    error_message = "The log group is encrypted with the module's key."
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 365
    error_message = "Logs are kept a year by default."
  }
  assert {
    condition     = aws_kms_key.this.tags["project"] == "keel" && aws_cloudwatch_log_group.this.tags["project"] == "keel"
    error_message = "Tags must be applied."
  }
}

# The policy as the key gets it (jsondecode of the planned aws_kms_key.policy), not its inputs.
run "key_policy_least_privilege" {
  command = plan

  assert {
    condition     = jsondecode(aws_kms_key.this.policy).Version == "2012-10-17" && [for s in jsondecode(aws_kms_key.this.policy).Statement : s.Sid] == ["AccountAdmin", "CloudWatchLogs"]
    error_message = "The key policy has two statements: the account's and CloudWatch Logs'."
  }
  assert {
    condition     = one([for s in jsondecode(aws_kms_key.this.policy).Statement : s if s.Sid == "AccountAdmin"]) == { Sid = "AccountAdmin", Effect = "Allow", Principal = { AWS = "arn:aws:iam::123456789012:root" }, Action = ["kms:*"], Resource = "*" }
    error_message = "The account root (and only it) administers the key, so IAM policies in the account can grant its use."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_kms_key.this.policy).Statement : try(s.Principal, null) == { AWS = "arn:aws:iam::123456789012:root" } if anytrue([for a in flatten([try(s.Action, "*")]) : contains(["*", "kms:*"], a) || can(regex("^kms:(Create|Put|Delete|Disable|Enable|Schedule|Cancel|Update|Tag|Untag|Revoke|Retire|Import)", a))])])
    error_message = "No principal but the account root may manage the key (kms:* or a management action)."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_kms_key.this.policy).Statement : try(s.Principal, "*") != "*" && !contains(try(flatten(values(s.Principal)), []), "*") && !can(s.NotPrincipal) && !can(s.NotAction) if s.Effect == "Allow"])
    error_message = "No statement allows the principal \"*\" or uses NotPrincipal / NotAction."
  }
  assert {
    condition     = one([for s in jsondecode(aws_kms_key.this.policy).Statement : [s.Effect, try(s.Principal, null)] if s.Sid == "CloudWatchLogs"]) == ["Allow", { Service = "logs.eu-west-1.amazonaws.com" }]
    error_message = "Only the regional CloudWatch Logs service gets the key's crypto actions."
  }
  assert {
    condition     = toset(one([for s in jsondecode(aws_kms_key.this.policy).Statement : try(s.Action, []) if s.Sid == "CloudWatchLogs"])) == toset(["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"])
    error_message = "CloudWatch Logs gets exactly the crypto actions AWS documents for encrypted log groups."
  }
  assert {
    condition     = one([for s in jsondecode(aws_kms_key.this.policy).Statement : try(s.Condition, null) if s.Sid == "CloudWatchLogs"]) == { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:aws:logs:eu-west-1:123456789012:log-group:/vpc/keel-staging/flow-logs" } }
    error_message = "CloudWatch Logs may use the key for this log group only."
  }
}

run "rejects_invalid_retention" {
  command = plan

  variables {
    retention_in_days = 10
  }

  expect_failures = [var.retention_in_days]
}
