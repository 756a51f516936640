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
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
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

run "logs_service_limited_to_this_log_group" {
  command = plan

  assert {
    condition     = [for s in data.aws_iam_policy_document.kms.statement : flatten([for p in s.principals : [p.type, tolist(p.identifiers)]]) if s.sid == "CloudWatchLogs"] == [["Service", "logs.eu-west-1.amazonaws.com"]]
    error_message = "Only the regional CloudWatch Logs service gets the key's crypto actions."
  }
  assert {
    condition     = [for s in data.aws_iam_policy_document.kms.statement : flatten([for c in s.condition : [c.test, c.variable, tolist(c.values)]]) if s.sid == "CloudWatchLogs"] == [["ArnLike", "kms:EncryptionContext:aws:logs:arn", "arn:aws:logs:eu-west-1:123456789012:log-group:/vpc/keel-staging/flow-logs"]]
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
