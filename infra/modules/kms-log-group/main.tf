# A customer-managed KMS key and the CloudWatch log group it encrypts. The key policy lets
# CloudWatch Logs use the key for this one log group only.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  log_group_arn = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:${var.log_group_name}"

  # A plain document, not an aws_iam_policy_document data source: `terraform test` (mocked
  # provider) and checkov then read the policy itself rather than a mocked or unresolved `.json`.
  kms_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # AWS's default key policy statement: the account owns the key, so IAM policies in it can
        # grant the key's use (EKS secrets encryption, modules/eks) and it can never become
        # unmanageable. In a key policy, Resource "*" is this key alone.
        Sid       = "AccountAdmin"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = ["kms:*"]
        Resource  = "*"
      },
      {
        # The actions AWS documents for CloudWatch Logs, only while it works on this one log group
        # (the service sets the log group's ARN as the encryption context).
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.name}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = local.log_group_arn }
        }
      },
    ]
  })
}

resource "aws_kms_key" "this" {
  description             = var.key_description
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.kms_key_policy
  tags                    = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
  retention_in_days = var.retention_in_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}
