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
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/keel-eks" }
  }
  mock_resource "aws_eks_cluster" {
    defaults = {
      arn      = "arn:aws:eks:eu-west-1:123456789012:cluster/keel-production"
      endpoint = "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
      identity = [{ oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF" }] }]
    }
  }
  mock_resource "aws_launch_template" {
    defaults = { id = "lt-0123456789abcdef0", latest_version = 1 }
  }
}

variables {
  cluster_name    = "keel-production"
  vpc_id          = "vpc-0123456789abcdef0"
  subnet_ids      = ["subnet-a", "subnet-b", "subnet-c"]
  admin_role_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
  deploy_role_arn = "arn:aws:iam::123456789012:role/keel-production-github-deploy"
  tags            = { project = "keel" }
}

run "private_endpoint_by_default" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access
    error_message = "The private endpoint must be enabled."
  }
  assert {
    condition     = !aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    error_message = "The public endpoint must be off by default."
  }
}

run "secrets_encrypted_and_logged" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.encryption_config[0].resources == toset(["secrets"]) && aws_eks_cluster.this.encryption_config[0].provider[0].key_arn == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    error_message = "Kubernetes secrets must be envelope-encrypted with the module's KMS key."
  }
  assert {
    condition     = module.cluster_logs.security_posture.key_rotation_enabled
    error_message = "KMS key rotation must be on."
  }
  assert {
    condition     = length(setsubtract(["api", "audit", "authenticator", "controllerManager", "scheduler"], aws_eks_cluster.this.enabled_cluster_log_types)) == 0
    error_message = "All control-plane log types must be enabled."
  }
  assert {
    condition     = module.cluster_logs.security_posture.log_group_kms_key_id == aws_eks_cluster.this.encryption_config[0].provider[0].key_arn && module.cluster_logs.log_group_name == "/aws/eks/keel-production/cluster"
    error_message = "Control-plane logs go to /aws/eks/<cluster>/cluster, KMS encrypted with the cluster's key."
  }
  assert {
    condition     = module.cluster_logs.security_posture.retention_in_days >= 365
    error_message = "Control-plane logs are kept a year."
  }
}

run "explicit_access" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.access_config[0].authentication_mode == "API" && !aws_eks_cluster.this.access_config[0].bootstrap_cluster_creator_admin_permissions
    error_message = "Access entries only; the creator gets no implicit admin."
  }
  assert {
    condition     = aws_eks_access_entry.admin["arn:aws:iam::123456789012:role/platform-admin"].principal_arn == "arn:aws:iam::123456789012:role/platform-admin" && endswith(aws_eks_access_policy_association.admin["arn:aws:iam::123456789012:role/platform-admin"].policy_arn, "/AmazonEKSClusterAdminPolicy")
    error_message = "The admin role must be an explicit cluster admin."
  }
  assert {
    condition     = aws_eks_access_policy_association.deploy[0].access_scope[0].type == "namespace" && aws_eks_access_policy_association.deploy[0].access_scope[0].namespaces == toset(["keel"])
    error_message = "The deploy role is limited to its namespace."
  }
}

run "nodes_hardened" {
  command = plan

  assert {
    condition     = aws_launch_template.node.metadata_options[0].http_tokens == "required" && aws_launch_template.node.metadata_options[0].http_put_response_hop_limit == 1
    error_message = "Nodes require IMDSv2 with hop limit 1."
  }
  assert {
    condition     = aws_launch_template.node.block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "Node volumes must be encrypted."
  }
  assert {
    condition     = aws_eks_node_group.default.subnet_ids == toset(["subnet-a", "subnet-b", "subnet-c"])
    error_message = "Nodes run in the private subnets."
  }
  assert {
    condition     = length(aws_eks_node_group.default.remote_access) == 0
    error_message = "No SSH remote access to nodes."
  }
}

run "core_addons" {
  command = plan

  assert {
    condition     = length(aws_eks_addon.core) == 3 && contains(keys(aws_eks_addon.core), "eks-pod-identity-agent") && aws_eks_addon.coredns.addon_name == "coredns"
    error_message = "vpc-cni, kube-proxy, coredns and the pod identity agent must be installed."
  }
}

run "public_endpoint_with_allowlist" {
  command = plan

  variables {
    endpoint_public_access = true
    public_access_cidrs    = ["203.0.113.0/24"]
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access && aws_eks_cluster.this.vpc_config[0].public_access_cidrs == toset(["203.0.113.0/24"])
    error_message = "The public endpoint is restricted to the allowlist."
  }
}

run "public_endpoint_requires_allowlist" {
  command = plan

  variables {
    endpoint_public_access = true
  }

  expect_failures = [aws_eks_cluster.this]
}

run "rejects_open_allowlist" {
  command = plan

  variables {
    endpoint_public_access = true
    public_access_cidrs    = ["0.0.0.0/0"]
  }

  expect_failures = [var.public_access_cidrs]
}
