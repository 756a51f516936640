output "repository_url" {
  description = "Repository URL to push to and reference in Helm values."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "Repository ARN (for IAM policies)."
  value       = aws_ecr_repository.this.arn
}

output "repository_name" {
  description = "Repository name."
  value       = aws_ecr_repository.this.name
}

output "kms_key_arn" {
  description = "KMS key encrypting the images."
  value       = coalesce(var.kms_key_arn, try(aws_kms_key.this[0].arn, null))
}

output "security_posture" {
  description = "Security-relevant settings of the repository (for tests and reviews)."
  value = {
    image_tag_mutability = aws_ecr_repository.this.image_tag_mutability
    scan_on_push         = aws_ecr_repository.this.image_scanning_configuration[0].scan_on_push
    encryption_type      = aws_ecr_repository.this.encryption_configuration[0].encryption_type
    force_delete         = aws_ecr_repository.this.force_delete
  }
}
