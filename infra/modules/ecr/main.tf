data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # A plain document, not an aws_iam_policy_document data source: `terraform test` (mocked
  # provider) and checkov then read the policy itself rather than a mocked or unresolved `.json`.
  kms_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # AWS's default key policy, and its only statement: the account owns the key, and IAM
      # policies in the account grant its use (the deploy role's EcrKms, modules/github-oidc). No
      # service principal: ECR uses the key through a grant made with the permissions of whoever
      # creates the repository. In a key policy, Resource "*" is this key alone.
      Sid       = "AccountAdmin"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = ["kms:*"]
      Resource  = "*"
    }]
  })
}

resource "aws_kms_key" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "ECR ${var.name} image encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.kms_key_policy
  tags                    = var.tags
}

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = coalesce(var.kms_key_arn, try(aws_kms_key.this[0].arn, null))
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiry_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the most recent tagged images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.keep_tagged_images
        }
        action = { type = "expire" }
      },
    ]
  })
}
