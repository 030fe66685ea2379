#!/usr/bin/env bash
# The install manifests of a release, as pushed by .github/workflows/release.yml with
# `flux push artifact`: DIR/crds.yaml (every CRD) and DIR/install.yaml (`kubectl kustomize
# metacontroller/`). TAG must be the version in metacontroller/kustomization.yaml, so the
# manifests of vX run the image vX and nothing else.
#
#   bash hack/release-manifests.sh dist v0.2.0
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: release-manifests.sh DIR TAG}"
tag="${2:?usage: release-manifests.sh DIR TAG}"

want="$(python3 -c 'import hooks; print("v" + hooks.__version__)')"
if [ "${tag}" != "${want}" ]; then
  echo "tag ${tag} is not the version of the code (${want})" >&2
  exit 1
fi
mkdir -p "${dir}"
rm -f "${dir}/crds.yaml" "${dir}/install.yaml"
for crd in crds/*.yaml; do
  printf -- '---\n' >> "${dir}/crds.yaml"
  cat "${crd}" >> "${dir}/crds.yaml"
done
kubectl kustomize metacontroller/ > "${dir}/install.yaml"
if ! grep -q "image: ghcr.io/kuberik/rollout-controller-hooks:${tag}$" "${dir}/install.yaml"; then
  echo "install.yaml does not run the image ${tag}" >&2
  exit 1
fi
echo "${dir}/crds.yaml ${dir}/install.yaml (${tag})"
