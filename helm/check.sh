#!/usr/bin/env bash
# Offline checks of the Helm chart helm/keel (no cluster needed):
#   lint       helm lint --strict, default values and every ci/*-values.yaml
#   docs       every value of values.yaml has a row in helm/keel/README.md and vice versa
#   reject     bad value combinations fail the render with a message naming the value
#   golden     helm template of every ci/*-values.yaml equals helm/golden/<name>.yaml
#   structure  CRD objects (ExternalSecret, HTTPRoute): structural check of the fields the chart
#              sets (not the upstream CRD schema), plus wiring between the rendered objects and
#              the API/worker Deployments against the values (disjoint selectors, PDBs, policies)
#   schema     kubernetes-validate --strict against Kubernetes 1.30 and 1.33 (built-in kinds)
#   checkov    checkov --framework kubernetes on each render; every skip is an annotation
# Usage: helm/check.sh            run the checks
#        helm/check.sh --update   rewrite helm/golden/*.yaml from the current chart, then check
# Tools: helm (installed into TOOLS_BIN by scripts/install-helm.sh when missing);
#        KUBERNETES_VALIDATE and CHECKOV name the Python tools (default: found on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
chart="$here/keel"
golden_dir="$here/golden"
k8s_versions=(1.30 1.33)
expected_helm="v4.1.4"

update=0
case "${1:-}" in
  "") ;;
  --update) update=1 ;;
  *) echo "usage: helm/check.sh [--update]" >&2; exit 2 ;;
esac

TOOLS_BIN="${TOOLS_BIN:-$HOME/.cache/keel/tools/bin}"
KUBERNETES_VALIDATE="${KUBERNETES_VALIDATE:-kubernetes-validate}"
CHECKOV="${CHECKOV:-checkov}"

if ! command -v helm >/dev/null 2>&1; then
  "$repo/scripts/install-helm.sh" "$TOOLS_BIN"
  export PATH="$TOOLS_BIN:$PATH"
fi
for tool in "$KUBERNETES_VALIDATE" "$CHECKOV"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "helm/check.sh: $tool not found (make tools installs it; set KUBERNETES_VALIDATE / CHECKOV)" >&2
    exit 1
  fi
done
# The Python helpers need PyYAML and jsonschema: kubernetes-validate's own interpreter has both.
kv_python="$(dirname "$(command -v "$KUBERNETES_VALIDATE")")/python3"
[[ -x "$kv_python" ]] || kv_python=python3

helm_version="$(helm version --short)"
echo "helm $helm_version, kubernetes-validate $("$KUBERNETES_VALIDATE" --version), checkov $("$CHECKOV" --version)"
if [[ "$helm_version" != "$expected_helm"* ]]; then
  echo "warning: the golden renders were made with helm $expected_helm; other versions may render differently" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
started=$SECONDS
summary=()
failed=0
pass() { summary+=("PASS $1"); }
fail() { summary+=("FAIL $1"); failed=1; }

mapfile -t ci_files < <(find "$chart/ci" -maxdepth 1 -name '*-values.yaml' | sort)
if [[ ${#ci_files[@]} -eq 0 ]]; then
  echo "helm/check.sh: no $chart/ci/*-values.yaml" >&2
  exit 1
fi
names=()
for f in "${ci_files[@]}"; do
  n="$(basename "$f")"
  names+=("${n%-values.yaml}")
done

# --- lint ---------------------------------------------------------------------------------
echo "== helm lint --strict"
lint_failed=()
if ! helm lint --strict "$chart" >"$tmp/lint.log" 2>&1; then
  cat "$tmp/lint.log"
  lint_failed+=("default values")
fi
for i in "${!names[@]}"; do
  if ! helm lint --strict "$chart" -f "${ci_files[$i]}" >"$tmp/lint.log" 2>&1; then
    cat "$tmp/lint.log"
    lint_failed+=("${names[$i]}")
  fi
done
if [[ ${#lint_failed[@]} -eq 0 ]]; then
  pass "lint: $((${#names[@]} + 1)) value sets clean"
else
  fail "lint: ${lint_failed[*]}"
fi

# --- docs ---------------------------------------------------------------------------------
echo "== values table of helm/keel/README.md"
if "$kv_python" "$here/check_values_doc.py" "$chart"; then
  pass "docs: every value has a row in helm/keel/README.md"
else
  fail "docs: helm/keel/README.md's values table and values.yaml differ"
fi

# --- reject -------------------------------------------------------------------------------
# Each case: the text the error must contain (it names the value), then helm template flags.
echo "== bad values are rejected"
# An ExternalSecret release complete up to the webhook encryption key.
es_base="--set externalSecret.enabled=true --set externalSecret.secretStoreRef.name=s --set externalSecret.database.appRemoteKey=a --set externalSecret.database.remoteKey=k --set externalSecret.database.host=h --set externalSecret.signingKey.remoteKey=sk --set database.tls.caBundle.configMapName=c"
es_ok="$es_base --set externalSecret.webhookEncryptionKey.remoteKey=wk"
np_ok="--set existingSecret=s --set networkPolicy.enabled=true --set networkPolicy.databaseCidrs={10.0.0.0/16}"
reject_cases=(
  "existingSecret:|"
  "are exclusive|--set existingSecret=s --set externalSecret.enabled=true"
  "externalSecret.secretStoreRef.name|--set externalSecret.enabled=true"
  "externalSecret.database.appRemoteKey|--set externalSecret.enabled=true --set externalSecret.secretStoreRef.name=s --set externalSecret.database.remoteKey=k"
  "externalSecret.database.remoteKey|--set externalSecret.enabled=true --set externalSecret.secretStoreRef.name=s --set externalSecret.database.appRemoteKey=a"
  "appRemoteKey: is the master secret|--set externalSecret.enabled=true --set externalSecret.secretStoreRef.name=s --set externalSecret.database.appRemoteKey=k --set externalSecret.database.remoteKey=k"
  "externalSecret.database.host|--set externalSecret.enabled=true --set externalSecret.secretStoreRef.name=s --set externalSecret.database.appRemoteKey=a --set externalSecret.database.remoteKey=k"
  "database.tls.caBundle.configMapName|--set externalSecret.enabled=true --set externalSecret.secretStoreRef.name=s --set externalSecret.database.appRemoteKey=a --set externalSecret.database.remoteKey=k --set externalSecret.database.host=h --set externalSecret.signingKey.remoteKey=sk"
  "migrations.existingSecret and externalSecret.enabled|--set externalSecret.enabled=true --set migrations.existingSecret=m"
  "migrations.existingSecret: must not be existingSecret|--set existingSecret=s --set migrations.existingSecret=s"
  "/database/tls/caBundle/key|--set existingSecret=s --set database.tls.caBundle.configMapName=c --set database.tls.caBundle.key=a/b"
  "autoscaling.minReplicas|--set existingSecret=s --set autoscaling.enabled=true --set autoscaling.minReplicas=5 --set autoscaling.maxReplicas=3"
  "resources.requests.cpu|--set existingSecret=s --set autoscaling.enabled=true --set resources.requests=null"
  "podDisruptionBudget.enabled|--set existingSecret=s --set replicaCount=1"
  "ingress.hosts|--set existingSecret=s --set ingress.enabled=true"
  "httpRoute.parentRefs|--set existingSecret=s --set httpRoute.enabled=true"
  "networkPolicy.databaseCidrs|--set existingSecret=s --set networkPolicy.enabled=true"
  "networkPolicy.otelCollector|--set existingSecret=s --set networkPolicy.enabled=true --set networkPolicy.databaseCidrs={10.0.0.0/16} --set otel.endpoint=http://collector:4318"
  "config.APP__DATABASE__URL|--set existingSecret=s --set config.APP__DATABASE__URL=postgres://x"
  "config.APP__DATABASE__MIGRATION_URL|--set existingSecret=s --set config.APP__DATABASE__MIGRATION_URL=postgres://x"
  "config.APP__SERVER__PORT|--set existingSecret=s --set-string config.APP__SERVER__PORT=9000"
  "config.OTEL_EXPORTER_OTLP_PROTOCOL|--set existingSecret=s --set config.OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
  "/otel/protocol|--set existingSecret=s --set otel.protocol=http/json"
  "terminationGracePeriodSeconds|--set existingSecret=s --set terminationGracePeriodSeconds=20"
  "terminationGracePeriodSeconds|--set existingSecret=s --set config.APP__SERVER__SHUTDOWN_TIMEOUT=40s"
  "image.tag|--set existingSecret=s --set image.tag=latest"
  "pullPolicy|--set existingSecret=s --set image.pullPolicy=Sometimes"
  "replicaCuont|--set existingSecret=s --set replicaCuont=3"
  "config.APP__WORKER__ENABLED|--set existingSecret=s --set-string config.APP__WORKER__ENABLED=false"
  "worker.replicaCount: podDisruptionBudget.enabled|--set existingSecret=s --set worker.enabled=true --set worker.replicaCount=1"
  "below worker.replicaCount|--set existingSecret=s --set worker.enabled=true --set replicaCount=3 --set podDisruptionBudget.maxUnavailable=2"
  "/worker|--set existingSecret=s --set worker.replicaCuont=3"
  "externalSecret.webhookEncryptionKey.remoteKey|$es_base"
  "externalSecret.webhookEncryptionKey.keyId|$es_ok --set externalSecret.webhookEncryptionKey.keyId=K1"
  "externalSecret.webhookEncryptionKey.keyId|$es_ok --set externalSecret.webhookEncryptionKey.keyId=a__b"
  "previousKeys[0].keyId: \"k1\" is listed twice|$es_ok --set externalSecret.webhookEncryptionKey.previousKeys[0].keyId=k1 --set externalSecret.webhookEncryptionKey.previousKeys[0].remoteKey=old"
  "previousKeys[0].remoteKey|$es_ok --set externalSecret.webhookEncryptionKey.previousKeys[0].keyId=k0 --set externalSecret.webhookEncryptionKey.previousKeys[0].remoteKey="
  "config.APP__WEBHOOKS__ACTIVE_KEY|$es_ok --set externalSecret.webhookEncryptionKey.keyId=k2"
  "config.APP__EMAIL__SMTP_USERNAME|$es_ok --set externalSecret.smtpPassword.remoteKey=smtp"
  "externalSecret.smtpPassword.remoteKey|$es_ok --set config.APP__EMAIL__SMTP_USERNAME=u"
  "config.APP__WEBHOOKS__ENCRYPTION_KEYS__K1|--set existingSecret=s --set config.APP__WEBHOOKS__ENCRYPTION_KEYS__K1=x"
  "config.APP__EMAIL__SMTP_PASSWORD|--set existingSecret=s --set config.APP__EMAIL__SMTP_PASSWORD=x"
  "networkPolicy.smtp.cidrs|$np_ok --set config.APP__EMAIL__SMTP_HOST=smtp.example.com"
  "networkPolicy.smtp.port|$np_ok --set networkPolicy.smtp.cidrs={10.1.0.0/24} --set networkPolicy.smtp.port=465"
  "/networkPolicy/webhookEgress/ports|$np_ok --set-json networkPolicy.webhookEgress.ports=[]"
  "/networkPolicy/webhookEgress/cidr|$np_ok --set networkPolicy.webhookEgress.cidr=0.0.0.0"
  "config.APP__WEBHOOKS__ALLOWED_NETWORKS|$np_ok --set config.APP__WEBHOOKS__ALLOWED_NETWORKS=10.20.0.0"
)
reject_failed=0
for case in "${reject_cases[@]}"; do
  want="${case%%|*}"
  read -r -a flags <<<"${case#*|}"
  if out="$(helm template keel "$chart" --namespace keel "${flags[@]}" 2>&1)"; then
    echo "  rendered, but should fail naming $want: ${flags[*]}"
    reject_failed=$((reject_failed + 1))
  elif [[ "$out" != *"$want"* ]]; then
    echo "  failed without naming $want: ${flags[*]}"
    printf '    %s\n' "${out//$'\n'/$'\n'    }"
    reject_failed=$((reject_failed + 1))
  fi
done
if [[ $reject_failed -eq 0 ]]; then
  pass "reject: ${#reject_cases[@]} bad value sets refused with a message naming the value"
else
  fail "reject: $reject_failed of ${#reject_cases[@]} bad value sets not refused as expected"
fi

# --- render + golden ----------------------------------------------------------------------
echo "== helm template (and NOTES.txt) + golden renders"
mkdir -p "$tmp/render" "$tmp/core"
rendered=()
golden_failed=()
for i in "${!names[@]}"; do
  n="${names[$i]}"
  mkdir -p "$tmp/render/$n"
  out="$tmp/render/$n/$n.yaml"
  if ! helm template keel "$chart" --namespace keel -f "${ci_files[$i]}" >"$out" 2>"$tmp/render.err"; then
    cat "$tmp/render.err"
    golden_failed+=("$n (render failed)")
    continue
  fi
  # NOTES.txt is rendered only by install/upgrade: a client-side dry run catches its errors.
  if ! helm install keel "$chart" --namespace keel -f "${ci_files[$i]}" --dry-run=client >/dev/null 2>"$tmp/render.err"; then
    cat "$tmp/render.err"
    golden_failed+=("$n (NOTES.txt failed)")
    continue
  fi
  rendered+=("$n")
  if [[ $update -eq 1 ]]; then
    mkdir -p "$golden_dir"
    cp "$out" "$golden_dir/$n.yaml"
  elif [[ ! -f "$golden_dir/$n.yaml" ]]; then
    echo "  no golden render helm/golden/$n.yaml"
    golden_failed+=("$n")
  elif ! diff -u --label "helm/golden/$n.yaml" --label "rendered $n" "$golden_dir/$n.yaml" "$out"; then
    golden_failed+=("$n")
  fi
done
for g in "$golden_dir"/*.yaml; do
  [[ -e "$g" ]] || continue
  n="$(basename "$g" .yaml)"
  if [[ ! -f "$chart/ci/$n-values.yaml" ]]; then
    if [[ $update -eq 1 ]]; then
      rm -f "$g"
    else
      echo "  helm/golden/$n.yaml has no helm/keel/ci/$n-values.yaml"
      golden_failed+=("$n (stale)")
    fi
  fi
done
if [[ ${#golden_failed[@]} -eq 0 ]]; then
  if [[ $update -eq 1 ]]; then
    pass "golden: rewrote ${#rendered[@]} renders in helm/golden/"
  else
    pass "golden: ${#rendered[@]} renders match helm/golden/"
  fi
else
  fail "golden: ${golden_failed[*]} differ (intended? run make helm-golden and commit helm/golden/)"
fi

# --- structure ----------------------------------------------------------------------------
echo "== structural check of CRD objects (chart's own schema, not the upstream CRDs) + wiring"
structure_failed=()
for n in "${rendered[@]}"; do
  if ! "$kv_python" "$here/check_render.py" "$tmp/render/$n/$n.yaml" "$tmp/core/$n.yaml" \
    "$chart/values.yaml" "$chart/ci/$n-values.yaml"; then
    structure_failed+=("$n")
  fi
done
if [[ ${#structure_failed[@]} -eq 0 ]]; then
  pass "structure: ${#rendered[@]} renders, CRD objects and references consistent"
else
  fail "structure: ${structure_failed[*]}"
fi

# --- schema -------------------------------------------------------------------------------
echo "== kubernetes-validate --strict"
core_files=()
for n in "${rendered[@]}"; do
  [[ -f "$tmp/core/$n.yaml" ]] && core_files+=("$tmp/core/$n.yaml")
done
objects=0
if [[ ${#core_files[@]} -gt 0 ]]; then
  objects="$(cat "${core_files[@]}" | grep -c '^kind:' || true)"
fi
for k in "${k8s_versions[@]}"; do
  if [[ ${#core_files[@]} -eq 0 ]]; then
    fail "schema $k: nothing rendered"
    continue
  fi
  # It exits 0 on an unknown apiVersion/kind (e.g. one removed in this version), printing only
  # "Couldn't find schema": with --quiet any output at all is a finding.
  rc=0
  out="$("$KUBERNETES_VALIDATE" --strict --quiet -k "$k" "${core_files[@]}" 2>&1)" || rc=$?
  if [[ $rc -ne 0 || -n "$out" ]]; then
    echo "${out//$tmp\/core\//}"
    if [[ "$out" == *"Couldn't find schema"* ]]; then
      fail "schema $k: an apiVersion/kind does not exist in Kubernetes $k"
    else
      fail "schema $k: invalid objects (exit $rc)"
    fi
  else
    pass "schema $k: $objects objects valid (strict)"
  fi
done

# --- checkov ------------------------------------------------------------------------------
echo "== checkov --framework kubernetes"
# One run per render: checkov's graph checks (e.g. a pod without a NetworkPolicy) would
# otherwise match one render's pods with another render's policies.
c_passed=0 c_failed=0 c_skipped=0 checkov_failed=()
for n in "${rendered[@]}"; do
  rc=0
  out="$("$CHECKOV" -d "$tmp/render/$n" --framework kubernetes --skip-download --quiet --compact 2>&1)" || rc=$?
  if [[ "$out" =~ Passed\ checks:\ ([0-9]+),\ Failed\ checks:\ ([0-9]+),\ Skipped\ checks:\ ([0-9]+) ]]; then
    c_passed=$((c_passed + BASH_REMATCH[1]))
    c_failed=$((c_failed + BASH_REMATCH[2]))
    c_skipped=$((c_skipped + BASH_REMATCH[3]))
    echo "  $n: passed ${BASH_REMATCH[1]}, failed ${BASH_REMATCH[2]}, skipped ${BASH_REMATCH[3]}"
  else
    rc=1
  fi
  if [[ $rc -ne 0 ]]; then
    echo "$out"
    checkov_failed+=("$n")
  fi
done
if [[ ${#checkov_failed[@]} -eq 0 ]]; then
  pass "checkov: $c_passed passed, $c_failed failed, $c_skipped skipped (annotated) over ${#rendered[@]} renders"
else
  fail "checkov: ${checkov_failed[*]} ($c_failed failed checks)"
fi

echo
printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
  echo "helm checks FAILED ($((SECONDS - started))s)"
  exit 1
fi
echo "helm checks passed: ${#names[@]} value sets ($((SECONDS - started))s)"
