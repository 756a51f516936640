#!/usr/bin/env bash
# db-app-password.sh — set, or rotate, the credentials of the service's PostgreSQL role in its
# Secrets Manager secret (terraform output db_app_secret_arn).
#
# Why a script: Terraform creates that secret but not its value (infra/modules/rds/main.tf says
# why), so the password never enters the Terraform state. Secrets Manager generates it
# (GetRandomPassword), and it travels from that call to the new secret version through a pipe:
# never on a command line, in a file or on the terminal.
#
# Rotation alternates between two roles, the tag's name and the same with `_b` (AWS's
# "alternating users" strategy): each run stores the role the secret does *not* name now, with
# a new password. `keel migrate` creates or updates that role and grants it the same rights;
# the role the running pods use keeps its password, so they keep logging in until they are
# restarted onto the new one — no window in which new connections fail.
#
# Usage: scripts/db-app-password.sh SECRET_ARN
#   e.g. scripts/db-app-password.sh "$(terraform -chdir=infra/envs/staging output -raw db_app_secret_arn)"
# The base role name comes from the secret's keel:db-username tag, which Terraform sets.
# Needs the AWS CLI with credentials allowed secretsmanager:GetRandomPassword, DescribeSecret,
# GetSecretValue (to see which role is current) and PutSecretValue on the secret, and
# kms:Decrypt and kms:GenerateDataKey on its key (an administrator role).
# helm/keel/README.md, "Rotating the app role's password", says what to run next.
set -euo pipefail

# shellcheck source=scripts/lib/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/log.sh"

[[ $# -eq 1 && -n "$1" ]] || die "usage: scripts/db-app-password.sh SECRET_ARN (terraform output db_app_secret_arn)"
secret="$1"
command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"
export AWS_PAGER=""

base="$(aws secretsmanager describe-secret --secret-id "$secret" \
  --query "Tags[?Key=='keel:db-username'].Value | [0]" --output text)"
# 61 characters at most, so that the alternate role's name (+ "_b") fits PostgreSQL's 63.
[[ "$base" =~ ^[a-z][a-z0-9_]{0,60}$ ]] ||
  die "$secret has no keel:db-username tag naming a PostgreSQL role (got '$base'): is it terraform output db_app_secret_arn?"

# Which role the secret names now: only its user name is kept from the value. A secret that
# has no value yet (the first run) starts with the base role.
if current="$(aws secretsmanager get-secret-value --secret-id "$secret" \
  --query SecretString --output text 2>&1)"; then
  [[ "$current" =~ \"username\":\ *\"([a-z0-9_]+)\" ]] ||
    die "the current value of $secret holds no username: set it with this script only"
  current_user="${BASH_REMATCH[1]}"
elif [[ "$current" == *ResourceNotFoundException* ]]; then
  current_user=""
else
  die "cannot read which role $secret names now: $(tail -n1 <<<"$current")"
fi
unset current
case "$current_user" in
"$base") username="${base}_b" ;;
"${base}_b" | "") username="$base" ;;
*) die "$secret names role '$current_user', neither $base nor ${base}_b" ;;
esac

# Letters and digits only (40 of them, ~238 bits): the password goes into a URL and into SQL,
# where punctuation needs escaping. Checked here too, because it is spliced into JSON below.
password="$(aws secretsmanager get-random-password --password-length 40 \
  --exclude-punctuation --require-each-included-type --query RandomPassword --output text)"
[[ "$password" =~ ^[A-Za-z0-9]{40}$ ]] || die "GetRandomPassword returned something other than 40 letters and digits"

version="$(printf '{"username":"%s","password":"%s"}' "$username" "$password" |
  aws secretsmanager put-secret-value --secret-id "$secret" --secret-string file:///dev/stdin \
    --query VersionId --output text)"
unset password
log "role $username with a new password stored in $secret (version $version); ${current_user:-no role} was current"
log "next: force-sync the ExternalSecret, helm upgrade (keel migrate creates or updates $username), rollout restart"
