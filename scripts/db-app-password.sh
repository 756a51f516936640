#!/usr/bin/env bash
# db-app-password.sh — set, or rotate, the password of the service's PostgreSQL role in its
# Secrets Manager secret (terraform output db_app_secret_arn).
#
# Why a script: Terraform creates that secret but not its value (infra/modules/rds/main.tf says
# why), so the password never enters the Terraform state. Secrets Manager generates it
# (GetRandomPassword), and it travels from that call to the new secret version through a pipe:
# never on a command line, in a file or on the terminal.
#
# Usage: scripts/db-app-password.sh SECRET_ARN
#   e.g. scripts/db-app-password.sh "$(terraform -chdir=infra/envs/staging output -raw db_app_secret_arn)"
# The user name comes from the secret's keel:db-username tag, which Terraform sets.
# Needs the AWS CLI with credentials allowed secretsmanager:GetRandomPassword, DescribeSecret and
# PutSecretValue on the secret, and kms:GenerateDataKey on its key (an administrator role).
# The database role keeps its old password until the next `keel migrate` applies the new one:
# helm/keel/README.md, "Rotating the app role's password", says what to run next.
set -euo pipefail

# shellcheck source=scripts/lib/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/log.sh"

[[ $# -eq 1 && -n "$1" ]] || die "usage: scripts/db-app-password.sh SECRET_ARN (terraform output db_app_secret_arn)"
secret="$1"
command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"
export AWS_PAGER=""

username="$(aws secretsmanager describe-secret --secret-id "$secret" \
  --query "Tags[?Key=='keel:db-username'].Value | [0]" --output text)"
[[ "$username" =~ ^[a-z][a-z0-9_]{0,62}$ ]] ||
  die "$secret has no keel:db-username tag naming a PostgreSQL role (got '$username'): is it terraform output db_app_secret_arn?"

# Letters and digits only (40 of them, ~238 bits): the password goes into a URL and into SQL,
# where punctuation needs escaping. Checked here too, because it is spliced into JSON below.
password="$(aws secretsmanager get-random-password --password-length 40 \
  --exclude-punctuation --require-each-included-type --query RandomPassword --output text)"
[[ "$password" =~ ^[A-Za-z0-9]{40}$ ]] || die "GetRandomPassword returned something other than 40 letters and digits"

version="$(printf '{"username":"%s","password":"%s"}' "$username" "$password" |
  aws secretsmanager put-secret-value --secret-id "$secret" --secret-string file:///dev/stdin \
    --query VersionId --output text)"
unset password
log "new password for role $username stored in $secret (version $version)"
log "next: force-sync the ExternalSecret, helm upgrade (keel migrate applies it to the role), rollout restart"
