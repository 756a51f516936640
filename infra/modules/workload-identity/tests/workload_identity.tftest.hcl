mock_provider "aws" {
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:user/ci"
      id         = "123456789012"
    }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/keel-production-service" }
  }
}

variables {
  name         = "keel-production"
  cluster_name = "keel-production"
  secret_arns  = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-123456"]
  kms_key_arns = ["arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
  tags         = { project = "keel" }
}

run "reads_only_own_secrets" {
  command = plan

  assert {
    condition     = jsondecode(aws_iam_role_policy.secrets.policy).Statement[0].Resource == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-123456"]
    error_message = "Only the listed secrets may be read."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.secrets.policy).Statement : alltrue([for a in s.Action : contains(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "kms:Decrypt"], a)])])
    error_message = "No actions beyond reading secrets."
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.secrets.policy).Statement[1].Condition.StringEquals["kms:ViaService"] == "secretsmanager.eu-west-1.amazonaws.com"
    error_message = "KMS decrypt only through Secrets Manager."
  }
}

run "bound_to_one_service_account" {
  command = plan

  assert {
    condition     = aws_eks_pod_identity_association.this.namespace == "keel" && aws_eks_pod_identity_association.this.service_account == "keel"
    error_message = "Role bound to keel/keel only."
  }
  assert {
    condition     = jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal.Service == "pods.eks.amazonaws.com"
    error_message = "Only EKS Pod Identity may assume the role."
  }
  assert {
    condition     = jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Condition.ArnEquals["aws:SourceArn"] == "arn:aws:eks:eu-west-1:123456789012:cluster/keel-production"
    error_message = "Trust is limited to this cluster."
  }
}

run "rejects_wildcard_secret" {
  command = plan

  variables {
    secret_arns = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:*"]
  }

  expect_failures = [var.secret_arns]
}
