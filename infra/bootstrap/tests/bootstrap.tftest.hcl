mock_provider "aws" {
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_kms_key" {
    defaults = {
      arn    = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
      key_id = "11111111-2222-3333-4444-555555555555"
    }
  }
  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::acme-keel-tfstate"
      id  = "acme-keel-tfstate"
    }
  }
}

variables {
  aws_region          = "eu-west-1"
  allowed_account_ids = ["123456789012"]
  state_bucket_name   = "acme-keel-tfstate"
}

run "state_bucket_is_safe" {
  command = plan

  assert {
    condition     = aws_s3_bucket_versioning.state.versioning_configuration[0].status == "Enabled"
    error_message = "State bucket must be versioned."
  }
  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.state.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms"
    error_message = "State bucket must be KMS encrypted."
  }
  assert {
    condition     = aws_s3_bucket_public_access_block.state.block_public_acls && aws_s3_bucket_public_access_block.state.block_public_policy && aws_s3_bucket_public_access_block.state.ignore_public_acls && aws_s3_bucket_public_access_block.state.restrict_public_buckets
    error_message = "All public access must be blocked."
  }
  assert {
    condition     = jsondecode(aws_s3_bucket_policy.state.policy).Statement[0].Effect == "Deny" && jsondecode(aws_s3_bucket_policy.state.policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false"
    error_message = "Non-TLS access must be denied."
  }
  assert {
    condition     = aws_kms_key.state.enable_key_rotation
    error_message = "State key rotation must be on."
  }
}

# The policy as the key gets it (jsondecode of the planned policy), not its inputs.
run "key_policy_is_the_accounts_alone" {
  command = plan

  assert {
    condition     = jsondecode(aws_kms_key.state.policy).Version == "2012-10-17" && one([for s in jsondecode(aws_kms_key.state.policy).Statement : s if s.Sid == "AccountAdmin"]) == { Sid = "AccountAdmin", Effect = "Allow", Principal = { AWS = "arn:aws:iam::123456789012:root" }, Action = ["kms:*"], Resource = "*" }
    error_message = "The account root administers the key without conditions, so IAM policies in the account can grant its use."
  }
  assert {
    condition     = [for s in jsondecode(aws_kms_key.state.policy).Statement : try(s.Principal, "*")] == [{ AWS = "arn:aws:iam::123456789012:root" }]
    error_message = "The key policy names no principal but the account root: S3 and the plan role use the key through IAM policies and grants, not the key policy."
  }
}

run "rejects_bad_account" {
  command = plan

  variables {
    allowed_account_ids = ["1234"]
  }

  expect_failures = [var.allowed_account_ids]
}
