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
}

variables {
  name = "keel"
  tags = { project = "keel" }
}

run "immutable_scanned_encrypted" {
  command = plan

  assert {
    condition     = aws_ecr_repository.this.image_tag_mutability == "IMMUTABLE"
    error_message = "ECR tags must be immutable."
  }
  assert {
    condition     = aws_ecr_repository.this.image_scanning_configuration[0].scan_on_push
    error_message = "Images must be scanned on push."
  }
  assert {
    condition     = aws_ecr_repository.this.encryption_configuration[0].encryption_type == "KMS"
    error_message = "Repository must be KMS encrypted."
  }
  assert {
    condition     = length(aws_kms_key.this) == 1 && aws_kms_key.this[0].enable_key_rotation
    error_message = "A rotating CMK must be created when none is given."
  }
  assert {
    condition     = !aws_ecr_repository.this.force_delete
    error_message = "force_delete must default to false."
  }
  assert {
    condition     = aws_ecr_repository.this.tags["project"] == "keel"
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
    error_message = "The key policy names no principal but the account root: ECR and the deploy role use the key through IAM policies and grants, not the key policy."
  }
}

run "lifecycle_policy" {
  command = plan

  assert {
    condition     = length(jsondecode(aws_ecr_lifecycle_policy.this.policy).rules) == 2
    error_message = "Lifecycle policy must expire untagged images and cap tagged ones."
  }
  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.this.policy).rules[0].selection.tagStatus == "untagged"
    error_message = "First rule must expire untagged images."
  }
}

run "external_key_no_cmk" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/abc"
  }

  assert {
    condition     = length(aws_kms_key.this) == 0
    error_message = "No key is created when one is given."
  }
  assert {
    condition     = aws_ecr_repository.this.encryption_configuration[0].kms_key == "arn:aws:kms:eu-west-1:123456789012:key/abc"
    error_message = "Given key must be used."
  }
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "Keel_Bad!"
  }

  expect_failures = [var.name]
}
