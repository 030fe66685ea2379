#!/usr/bin/env bash
# End to end on a real cluster (kind, in .github/workflows/e2e.yml): Flux and Metacontroller
# installed, the hook image built and loaded, the example applied, and releases walked through
# one after another. tests/system/test_release_travels.py runs the same scenario without a
# cluster: the same example files, the same releases (hack/e2e-releases), the same outcomes.
#
# Needs: a kind cluster as the current kubectl context, kind, kubectl, flux, docker.
# Never run it against a cluster you care about: it installs and changes cluster-wide objects.
set -euo pipefail
cd "$(dirname "$0")/.."

METACONTROLLER_VERSION="${METACONTROLLER_VERSION:-v4.17.2}"
KIND_CLUSTER="${KIND_CLUSTER:-rollout-e2e}"
BAKE_TIME="${BAKE_TIME:-30s}"
WAIT="${WAIT:-10m}"
VERSION="$(python3 -c 'import hooks; print(hooks.__version__)')"
IMAGE="ghcr.io/kuberik/rollout-controller-hooks:v${VERSION}"
NS=podinfo
mapfile -t RELEASES < <(grep -v '^#' hack/e2e-releases)

log() { printf '\n==> %s\n' "$*"; }

log "Flux (with the image controllers) and Metacontroller ${METACONTROLLER_VERSION}"
flux install --components-extra=image-reflector-controller,image-automation-controller
kubectl apply -k "https://github.com/metacontroller/metacontroller/manifests/production?ref=${METACONTROLLER_VERSION}"
kubectl -n metacontroller rollout status statefulset/metacontroller --timeout="${WAIT}"

log "The hook image ${IMAGE}, built here and loaded into kind"
docker build -t "${IMAGE}" .
kind load docker-image "${IMAGE}" --name "${KIND_CLUSTER}"

log "CRDs, token Secret, hook service and Metacontroller wiring"
kubectl apply -f crds/
kubectl wait --for=condition=Established crd --all --timeout=2m
kubectl create namespace rollout-controller --dry-run=client -o yaml | kubectl apply -f -
kubectl -n rollout-controller create secret generic rollout-hooks-token \
  --from-literal=token="$(openssl rand -hex 32)" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -k metacontroller/
kubectl -n rollout-controller rollout status deployment/rollout-hooks --timeout="${WAIT}"

log "The example without its schedules (their windows follow the wall clock), baking ${BAKE_TIME}"
# The ImagePolicy announces exactly one release at a time: its range is moved release by release.
kubectl apply -f examples/namespace.yaml
for file in flux-image.yaml flux-source.yaml flux-kustomizations.yaml rolloutgate.yaml healthcheck.yaml; do
  kubectl apply -f "examples/${file}"
done
kubectl -n "${NS}" patch imagepolicy podinfo --type=merge \
  -p "{\"spec\":{\"policy\":{\"semver\":{\"range\":\"${RELEASES[0]}\"}}}}"
# The example's Rollout with the test's bake (the system test sets the same two fields).
kubectl patch --local -f examples/rollout.yaml --type=merge -o yaml \
  -p "{\"spec\":{\"bakeTime\":\"${BAKE_TIME}\",\"deployTimeout\":\"${WAIT}\"}}" | kubectl apply -f -

expect_release() {
  local tag="$1"
  log "waiting for ${tag}: deployed, applied by Flux, baked Succeeded"
  kubectl -n "${NS}" wait rollout/podinfo --timeout="${WAIT}" \
    --for=jsonpath='{.status.history[0].version.tag}'="${tag}"
  kubectl -n "${NS}" wait rollout/podinfo --timeout="${WAIT}" \
    --for=jsonpath='{.status.history[0].bakeStatus}'=Succeeded
  test "$(kubectl -n "${NS}" get ocirepository podinfo -o jsonpath='{.spec.ref.tag}')" = "${tag}"
  kubectl -n "${NS}" wait ocirepository/podinfo --for=condition=Ready --timeout="${WAIT}"
  case "$(kubectl -n "${NS}" get ocirepository podinfo -o jsonpath='{.status.artifact.revision}')" in
    "${tag}@sha256:"*) ;;
    *) echo "OCIRepository artifact is not ${tag}" >&2; return 1 ;;
  esac
  for ks in podinfo podinfo-canary; do
    kubectl -n "${NS}" wait "kustomization/${ks}" --for=condition=Ready --timeout="${WAIT}"
    case "$(kubectl -n "${NS}" get kustomization "${ks}" -o jsonpath='{.status.lastAppliedRevision}')" in
      "${tag}@sha256:"*) ;;
      *) echo "Kustomization ${ks} has not applied ${tag}" >&2; return 1 ;;
    esac
  done
  test "$(kubectl -n "${NS}" get kustomization podinfo -o jsonpath='{.spec.postBuild.substitute.VERSION}')" = "${tag}"
  test "$(kubectl -n "${NS}" get healthcheck podinfo -o jsonpath='{.status.status}')" = Healthy
}

expect_release "${RELEASES[0]}"
for tag in "${RELEASES[@]:1}"; do
  log "image-reflector-controller announces ${tag}"
  kubectl -n "${NS}" patch imagepolicy podinfo --type=merge \
    -p "{\"spec\":{\"policy\":{\"semver\":{\"range\":\"${tag}\"}}}}"
  expect_release "${tag}"
done

log "history (newest first)"
kubectl -n "${NS}" get rollout podinfo \
  -o jsonpath='{range .status.history[*]}{.version.tag}{" "}{.bakeStatus}{"\n"}{end}'
want="$(printf '%s Succeeded\n' "${RELEASES[@]}" | tac)"
got="$(kubectl -n "${NS}" get rollout podinfo \
  -o jsonpath='{range .status.history[*]}{.version.tag}{" "}{.bakeStatus}{"\n"}{end}')"
test "${got}" = "${want}" || { echo "history is not every release Succeeded, newest first" >&2; exit 1; }
log "e2e passed"
