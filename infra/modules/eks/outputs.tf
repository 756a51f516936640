output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "EKS cluster ARN."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "API server endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_security_group_id" {
  description = "Security group EKS attaches to the control plane and managed nodes."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_issuer_url" {
  description = "Cluster OIDC issuer URL (for IRSA, if ever needed)."
  value       = aws_eks_cluster.this.identity[0].oidc[0].issuer
}

output "kms_key_arn" {
  description = "KMS key encrypting Kubernetes secrets."
  value       = module.cluster_logs.kms_key_arn
}

output "sizing" {
  description = "Instance types and scaling bounds of the managed node group (for tests and reviews)."
  value = {
    instance_types = aws_eks_node_group.default.instance_types
    min_size       = aws_eks_node_group.default.scaling_config[0].min_size
    desired_size   = aws_eks_node_group.default.scaling_config[0].desired_size
    max_size       = aws_eks_node_group.default.scaling_config[0].max_size
  }
}

output "security_posture" {
  description = "Security-relevant settings of the cluster (for tests and reviews)."
  value = {
    endpoint_private_access = aws_eks_cluster.this.vpc_config[0].endpoint_private_access
    endpoint_public_access  = aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    secrets_kms_key_arn     = one([for c in aws_eks_cluster.this.encryption_config : c.provider[0].key_arn if contains(c.resources, "secrets")])
    authentication_mode     = aws_eks_cluster.this.access_config[0].authentication_mode
    log_types               = aws_eks_cluster.this.enabled_cluster_log_types
  }
}
