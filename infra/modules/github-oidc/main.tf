data "aws_partition" "current" {}

locals {
  oidc_host         = "token.actions.githubusercontent.com"
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.oidc_provider_arn

  # The repository part of a subject, "repo:<repository>:<context>", in each form GitHub issues
  # (https://docs.github.com/en/actions/reference/security/oidc#immutable-subject-claims):
  # - name form "repo:OWNER/NAME": repositories created before 2026-07-15 that have not opted in
  #   to immutable subject claims;
  # - immutable form "repo:OWNER@OWNER_ID/NAME@REPO_ID": repositories created, renamed or
  #   transferred on github.com on or after 2026-07-15, and older ones that opted in. The ids never
  #   change and are never reused, and "@" cannot appear in an owner or repository name.
  # Each subject is a complete, literal string under StringEquals (a list is an OR of exact values),
  # next to StringEquals aud = "sts.amazonaws.com", as GitHub's AWS guide writes the condition
  # (https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws)
  # and as the OIDC reference above shows it for the immutable form ("token.actions.githubusercontent.com:sub":
  # "repo:octo-org@123456/octo-repo@456789:ref:refs/heads/demo-branch"). No StringLike: a wildcard
  # such as "repo:OWNER/NAME*" or "repo:OWNER@*/NAME@*" would let "OWNER/NAME-evil", another owner
  # or another repository id match.
  owner_id       = var.github_repository_owner_id == null ? "" : var.github_repository_owner_id
  repository_id  = var.github_repository_id == null ? "" : var.github_repository_id
  repo_owner     = split("/", var.github_repository)[0]
  repo_name      = split("/", var.github_repository)[1]
  immutable_repo = local.owner_id != "" && local.repository_id != "" ? "${local.repo_owner}@${local.owner_id}/${local.repo_name}@${local.repository_id}" : null
  subject_repos  = compact([var.trust_name_subjects ? var.github_repository : null, local.immutable_repo])

  # Contexts ("environment:ENV", "ref:refs/heads/BRANCH", "pull_request") each role trusts, and
  # every subject: all contexts in the name form first, then all in the immutable form.
  deploy_contexts = concat(
    [for e in var.deploy_environments : "environment:${e}"],
    [for b in var.deploy_branches : "ref:refs/heads/${b}"],
  )
  # With plan_environments the plan role trusts only jobs of those (protected) GitHub
  # environments, so a plan waits for their reviewers; otherwise any pull request of the repository.
  plan_contexts = length(var.plan_environments) > 0 ? [
    for e in var.plan_environments : "environment:${e}"
  ] : ["pull_request"]

  deploy_subjects = tolist(flatten([for r in local.subject_repos : [for c in local.deploy_contexts : "repo:${r}:${c}"]]))
  plan_subjects   = tolist(flatten([for r in local.subject_repos : [for c in local.plan_contexts : "repo:${r}:${c}"]]))
  # The apply and release roles trust jobs of their GitHub environments only: never a branch or a
  # pull request, so each job waits for that environment's protection rules.
  apply_subjects   = tolist(flatten([for r in local.subject_repos : [for e in var.apply_environments : "repo:${r}:environment:${e}"]]))
  release_subjects = tolist(flatten([for r in local.subject_repos : [for e in var.release_environments : "repo:${r}:environment:${e}"]]))

  # Every role trusts GitHub's OIDC provider for exactly its own subjects (exact StringEquals,
  # never a wildcard); only the subject list differs between them.
  trust_policies = {
    for role, subjects in {
      deploy  = local.deploy_subjects
      plan    = local.plan_subjects
      release = local.release_subjects
      apply   = local.apply_subjects
      } : role => jsonencode({
        Version = "2012-10-17"
        Statement = [{
          Effect    = "Allow"
          Action    = "sts:AssumeRoleWithWebIdentity"
          Principal = { Federated = local.oidc_provider_arn }
          Condition = {
            StringEquals = {
              "${local.oidc_host}:aud" = "sts.amazonaws.com"
              "${local.oidc_host}:sub" = subjects
            }
          }
        }]
    })
  }

  ecr_push_statements = concat([
    {
      Sid      = "EcrLogin"
      Effect   = "Allow"
      Action   = ["ecr:GetAuthorizationToken"]
      Resource = "*"
    },
    {
      Sid    = "EcrPush"
      Effect = "Allow"
      Action = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:CompleteLayerUpload",
        "ecr:DescribeImages",
        "ecr:DescribeImageScanFindings",
        "ecr:GetDownloadUrlForLayer",
        "ecr:InitiateLayerUpload",
        "ecr:PutImage",
        "ecr:UploadLayerPart",
      ]
      Resource = var.ecr_repository_arn
    },
    ], var.ecr_kms_key_arn == null ? [] : [{
      Sid      = "EcrKms"
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource = var.ecr_kms_key_arn
  }])

  # Partition, region, account and cluster name of the environment, from the EKS cluster ARN
  # (arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME): the plan role's reads are scoped to them.
  env = regex("^arn:(?P<partition>[^:]+):eks:(?P<region>[^:]+):(?P<account>[0-9]{12}):cluster/(?P<cluster>[^/]+)$", var.eks_cluster_arn)
  # "arn:PARTITION:SERVICE:REGION:ACCOUNT:" for a service.
  arn_in_env = { for svc in ["eks", "kms", "logs", "rds", "secretsmanager"] : svc => "arn:${local.env.partition}:${svc}:${local.env.region}:${local.env.account}:" }

  # What `terraform plan` reads to refresh the resources Keel's modules create (network, eks,
  # kms-log-group, rds, ecr, github-oidc, workload-identity) and nothing else: named read
  # actions, no wildcards, no object or secret contents. Adding a resource type to a module
  # means adding its read actions here, or the plan fails with AccessDenied.
  plan_read_statements = [
    {
      Sid    = "Identity"
      Effect = "Allow"
      # The provider's account check (allowed_account_ids) and data "aws_caller_identity".
      Action   = ["sts:GetCallerIdentity"]
      Resource = "*"
    },
    {
      # EC2 Describe calls support no resource-level permissions.
      Sid    = "NetworkAndNodes"
      Effect = "Allow"
      Action = [
        "ec2:DescribeAddresses",
        "ec2:DescribeAddressesAttribute",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeFlowLogs",
        "ec2:DescribeInternetGateways",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeNatGateways",
        "ec2:DescribeNetworkAcls",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeTags",
        "ec2:DescribeVpcAttribute",
        "ec2:DescribeVpcs",
      ]
      Resource = "*"
    },
    {
      Sid    = "Cluster"
      Effect = "Allow"
      Action = [
        "eks:DescribeAccessEntry",
        "eks:DescribeAddon",
        "eks:DescribeCluster",
        "eks:DescribeNodegroup",
        "eks:DescribePodIdentityAssociation",
        "eks:ListAssociatedAccessPolicies",
        "eks:ListTagsForResource",
      ]
      # The cluster and its node groups, add-ons, access entries and pod identity associations.
      Resource = [var.eks_cluster_arn, "${local.arn_in_env.eks}*/${local.env.cluster}/*"]
    },
    {
      Sid    = "Database"
      Effect = "Allow"
      Action = [
        "rds:DescribeDBInstances",
        "rds:DescribeDBParameterGroups",
        "rds:DescribeDBParameters",
        "rds:DescribeDBSubnetGroups",
        "rds:ListTagsForResource",
      ]
      Resource = "${local.arn_in_env.rds}*"
    },
    {
      Sid    = "Registry"
      Effect = "Allow"
      Action = [
        "ecr:DescribeRepositories",
        "ecr:GetLifecyclePolicy",
        "ecr:GetRepositoryPolicy",
        "ecr:ListTagsForResource",
      ]
      Resource = var.ecr_repository_arn
    },
    {
      # Every Keel role is named after the environment (modules/stack passes one name to all).
      Sid    = "Roles"
      Effect = "Allow"
      Action = [
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "iam:ListRoleTags",
      ]
      Resource = "arn:${local.env.partition}:iam::${local.env.account}:role/${var.name}-*"
    },
    {
      Sid      = "OidcProvider"
      Effect   = "Allow"
      Action   = ["iam:GetOpenIDConnectProvider", "iam:ListOpenIDConnectProviderTags"]
      Resource = "arn:${local.env.partition}:iam::${local.env.account}:oidc-provider/${local.oidc_host}"
    },
    {
      # Key metadata and policy only: no kms:Decrypt, so no ciphertext can be opened with this.
      Sid    = "KeyMetadata"
      Effect = "Allow"
      Action = [
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus",
        "kms:ListResourceTags",
      ]
      Resource = "${local.arn_in_env.kms}key/*"
    },
    {
      Sid      = "KeyAliases"
      Effect   = "Allow"
      Action   = ["kms:ListAliases"]
      Resource = "*"
    },
    {
      # Log group settings only: no logs:GetLogEvents or FilterLogEvents.
      Sid      = "LogGroups"
      Effect   = "Allow"
      Action   = ["logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:ListTagsLogGroup"]
      Resource = "${local.arn_in_env.logs}log-group:*"
    },
    {
      # Metadata and resource policy of the environment's own secrets; never GetSecretValue.
      Sid      = "SecretMetadata"
      Effect   = "Allow"
      Action   = ["secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"]
      Resource = "${local.arn_in_env.secretsmanager}secret:${var.name}/*"
    },
  ]
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

resource "aws_iam_role" "deploy" {
  name                 = "${var.name}-github-deploy"
  description          = "GitHub Actions deploy for ${var.github_repository}: push to ECR, deploy to EKS"
  max_session_duration = 3600
  assume_role_policy   = local.trust_policies.deploy
  tags                 = var.tags

  lifecycle {
    precondition {
      condition     = length(local.deploy_subjects) > 0
      error_message = "Set deploy_environments and/or deploy_branches: the deploy role must be pinned to specific subjects."
    }
    precondition {
      condition     = local.oidc_provider_arn != null
      error_message = "Set oidc_provider_arn when create_oidc_provider is false."
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name = "ecr-push-eks-describe"
  role = aws_iam_role.deploy.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.ecr_push_statements, [
      {
        Sid      = "EksDescribe"
        Effect   = "Allow"
        Action   = ["eks:DescribeCluster"]
        Resource = var.eks_cluster_arn
      },
    ])
  })
}

resource "aws_iam_role" "plan" {
  name                 = "${var.name}-github-plan"
  description          = "GitHub Actions terraform plan on ${var.github_repository}: reads what the plan refreshes and its own state"
  max_session_duration = 3600
  assume_role_policy   = local.trust_policies.plan
  tags                 = var.tags
}

# No managed policy (AWS ReadOnlyAccess reads every S3 object and far more): the plan role gets
# exactly the reads below. The *_exclusive resources make these its only policies, so one
# attached by hand is removed again by the next apply.
resource "aws_iam_role_policy" "plan_read" {
  name = "terraform-plan-read"
  role = aws_iam_role.plan.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.plan_read_statements
  })
}

resource "aws_iam_role_policy" "plan_state" {
  count = var.state_bucket_arn == null ? 0 : 1

  name = "terraform-state"
  role = aws_iam_role.plan.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "ListState"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = var.state_bucket_arn
        Condition = {
          StringLike = { "s3:prefix" = ["${var.state_key_prefix}*"] }
        }
      },
      {
        Sid      = "ReadState"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${var.state_bucket_arn}/${var.state_key_prefix}*"
      },
      {
        # The S3 native lock (use_lockfile): <key>.tflock is created and deleted around the plan.
        Sid      = "Lockfile"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:DeleteObject"]
        Resource = "${var.state_bucket_arn}/${var.state_key_prefix}*.tflock"
      },
      ], var.state_kms_key_arn == null ? [] : [{
        # Decrypt the state, encrypt the lockfile: only through S3, only for this bucket
        # (with an S3 Bucket Key the encryption context is the bucket, else the object).
        Sid      = "StateKms"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.state_kms_key_arn
        Condition = {
          StringEquals = { "kms:ViaService" = "s3.${split(":", var.state_kms_key_arn)[3]}.amazonaws.com" }
          StringLike = {
            "kms:EncryptionContext:aws:s3:arn" = [var.state_bucket_arn, "${var.state_bucket_arn}/${var.state_key_prefix}*"]
          }
        }
    }])
  })
}

resource "aws_iam_role_policies_exclusive" "plan" {
  role_name    = aws_iam_role.plan.name
  policy_names = concat([aws_iam_role_policy.plan_read.name], aws_iam_role_policy.plan_state[*].name)
}

resource "aws_iam_role_policy_attachments_exclusive" "plan" {
  role_name   = aws_iam_role.plan.name
  policy_arns = []
}

# The release workflow (release.yml, tags v*) pushes and signs the image in a GitHub environment
# of its own, with no reviewers but a tag rule, before anyone approves a deploy. It gets ECR push
# and nothing else: no EKS access entry names it, so a tag can publish an image but never
# deploy one; deploys stay with the deploy role behind the production environment's reviewers.
resource "aws_iam_role" "release" {
  count = length(var.release_environments) > 0 ? 1 : 0

  name                 = "${var.name}-github-release"
  description          = "GitHub Actions release on ${var.github_repository}: push the image to ECR, nothing else"
  max_session_duration = 3600
  assume_role_policy   = local.trust_policies.release
  tags                 = var.tags
}

resource "aws_iam_role_policy" "release" {
  count = length(aws_iam_role.release)

  name = "ecr-push"
  role = aws_iam_role.release[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.ecr_push_statements
  })
}

# `terraform apply` from infra.yml on main. Applying this root creates VPCs, clusters, databases,
# KMS keys and IAM roles (this one among them), so whatever can apply can grant itself anything
# in the account: the role is an administrator by necessity (apply_policy_arns), and the
# protection is who may assume it. It trusts only jobs of the apply environments, which GitHub
# enters after the environment's required reviewers approve and only from the branches its
# deployment rule allows (docs/ci-cd.md): never a pull request, a branch or a tag by itself.
resource "aws_iam_role" "apply" {
  count = length(var.apply_environments) > 0 ? 1 : 0

  name                 = "${var.name}-github-apply"
  description          = "GitHub Actions terraform apply on ${var.github_repository}, from its protected apply environment only"
  max_session_duration = 3600
  assume_role_policy   = local.trust_policies.apply
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "apply" {
  #checkov:skip=CKV_AWS_274:The apply role creates IAM roles and KMS key policies, so any policy that can apply this root can escalate to administrator; the gate is its trust policy (a reviewed environment only)
  for_each = length(var.apply_environments) > 0 ? toset(var.apply_policy_arns) : toset([])

  role       = aws_iam_role.apply[0].name
  policy_arn = each.value
}
