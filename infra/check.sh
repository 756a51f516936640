#!/usr/bin/env bash
# Offline checks for infra/: fmt, init+validate every module/root, terraform test, optional checkov.
# Usage: infra/check.sh            (CHECKOV=/path/to/checkov infra/check.sh to include checkov)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# Locate the provider mirror at run time (directory that holds registry.terraform.io/hashicorp/aws).
mirror="${TF_PROVIDER_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  aws_dir="$(find / -maxdepth 5 -type d -path '*registry.terraform.io/hashicorp/aws' -not -path '*/.terraform/*' -not -path '/proc/*' 2>/dev/null | head -n 1 || true)"
  if [[ -z "$aws_dir" ]]; then
    echo "check.sh: no filesystem mirror with hashicorp/aws found (set TF_PROVIDER_MIRROR)" >&2
    exit 1
  fi
  mirror="$(dirname "$(dirname "$(dirname "$aws_dir")")")"
fi

cache="$here/.cache"
mkdir -p "$cache/plugins"
cat >"$cache/terraformrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
plugin_cache_dir = "$cache/plugins"
RC
export TF_CLI_CONFIG_FILE="$cache/terraformrc"
export TF_IN_AUTOMATION=1
export CHECKPOINT_DISABLE=1

echo "== terraform fmt -check -recursive"
terraform fmt -check -recursive .

mapfile -t dirs < <(find modules envs bootstrap -name '*.tf' -not -path '*/.terraform/*' -not -path '*/tests/*' -printf '%h\n' 2>/dev/null | sort -u)

# A moved or renamed folder must not turn the checks into a pass that checked nothing.
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "check.sh: no Terraform directories found under modules/, envs/ or bootstrap/ in $here: nothing to check" >&2
  exit 1
fi

for d in "${dirs[@]}"; do
  echo "== $d"
  (
    cd "$d"
    terraform init -backend=false -input=false -no-color >/dev/null
    terraform validate -no-color
    if [[ -d tests ]]; then
      # terraform test passes with no test files at all ("0 passed, 0 failed").
      if ! compgen -G 'tests/*.tftest.hcl' >/dev/null; then
        echo "check.sh: $d/tests holds no *.tftest.hcl: nothing to test" >&2
        exit 1
      fi
      terraform test -no-color
    fi
  )
done

if [[ -n "${CHECKOV:-}" ]]; then
  echo "== checkov ($("$CHECKOV" --version))"
  # checkov exits non-zero when any check fails.
  "$CHECKOV" -d . --framework terraform --skip-download --quiet --compact
fi

echo "infra checks passed (${#dirs[@]} directories)"
