#!/usr/bin/env bash
# Makes the release artifacts of the version in controller/__init__.py and pushes the image and the chart to an
# OCI registry. The same script runs on a version tag in GitHub (.github/workflows/release.yaml, to ghcr.io) and
# here against a local registry (the e2e, tests/e2e/test_release.py).
#
#   1. dist:  `python -m build` (sdist + wheel, from a clean copy of the tracked sources), `twine check --strict`;
#   2. image: `docker build` with the OCI labels (version, revision, source), the base pinned by digest when the
#             registry answers (else by tag, said so), the image's own `--version` checked, its size reported;
#   3. chart: `helm package` with version = appVersion = the version and image.repository = the registry's;
#   4. push:  the image (`crane push` of `docker save`) and the chart (`helm push`) to the registry.
# The wheel is not uploaded here: the workflow publishes OUT/dist to the Python package index.
#
#   scripts/release.sh --registry ghcr.io/OWNER
#   scripts/release.sh --registry localhost:5001 --plain-http
#
# Options (or environment): --registry HOST[:PORT][/PATH] (RELEASE_REGISTRY), --plain-http (RELEASE_PLAIN_HTTP=1),
# --out DIR (RELEASE_OUT, default ./dist), --tag vX.Y.Z (RELEASE_TAG: must name the version), --no-push.
# PYTHON (python3; needs the `build` and `twine` packages), HELM and CRANE (default: the cached builds of
# scripts/build-controlplane.sh and scripts/build-release-tools.sh), PYTHON_IMAGE (the Dockerfile's default).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
LOG_PREFIX=release

registry=${RELEASE_REGISTRY:-}
plain_http=${RELEASE_PLAIN_HTTP:-}
out=${RELEASE_OUT:-$root/dist}
tag=${RELEASE_TAG:-}
push=1
while (($#)); do
  case "$1" in
    --registry) registry=${2:?--registry needs HOST[:PORT][/PATH]}; shift 2 ;;
    --plain-http) plain_http=1; shift ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --tag) tag=${2:?--tag needs vX.Y.Z}; shift 2 ;;
    --no-push) push=""; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see scripts/release.sh --help)" ;;
  esac
done
[[ -n "$registry" ]] || die "no registry: pass --registry HOST[:PORT][/PATH] (or RELEASE_REGISTRY), e.g. ghcr.io/owner"
registry=${registry%/}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
HELM=${HELM:-$(bash "$root/scripts/build-controlplane.sh" --print)/helm}
CRANE=${CRANE:-$(bash "$root/scripts/build-release-tools.sh" --print)/crane}
[[ -x "$HELM" ]] || HELM=$(command -v helm) || die "no helm: run scripts/build-controlplane.sh"
[[ -x "$CRANE" ]] || CRANE=$(bash "$root/scripts/build-release-tools.sh" | tail -1)/crane
insecure=() http=()
[[ -z "$plain_http" ]] || { insecure=(--insecure); http=(--plain-http); }
start=$SECONDS

# ---- one version ------------------------------------------------------------------------------------------
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' controller/__init__.py)
[[ -n "$version" ]] || die "no __version__ in controller/__init__.py"
for key in version appVersion; do
  value=$(sed -n "s/^$key: \"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" chart/Chart.yaml)
  [[ "$value" == "$version" ]] || die "chart/Chart.yaml $key is '$value', not $version: set it to $version"
done
[[ -z "$tag" || "$tag" == "v$version" ]] || die "tag $tag does not name version $version (controller/__init__.py)"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source_url=${RELEASE_SOURCE:-https://github.com/TykTechnologies/k8s-hosts-controller}
image=$registry/k8s-hosts-controller:$version
log "version $version, revision $revision, registry $registry${plain_http:+ (plain HTTP)}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- 1. sdist + wheel -------------------------------------------------------------------------------------
# From a copy of the tracked (or new, not ignored) files: a stale *.egg-info in the checkout would add its
# file list to the sdist.
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard -- pyproject.toml README.md controller |
  xargs -0 tar -cf - | tar -xf - -C "$work/src"
rm -f "$out"/k8s_hosts_controller-*
"$PYTHON" -m build --outdir "$out" "$work/src" >"$work/build.log" 2>&1 ||
  { tail -30 "$work/build.log" >&2; die "python -m build failed"; }
"$PYTHON" -m twine check --strict "$out"/k8s_hosts_controller-"$version"* >&2
log "dist: $(cd "$out" && for f in k8s_hosts_controller-"$version"*; do printf '%s (%s bytes) ' "$f" "$(stat -c %s "$f")"; done)"

# ---- 2. image ---------------------------------------------------------------------------------------------
base=${PYTHON_IMAGE:-$(sed -n 's/^ARG PYTHON_IMAGE=\(.*\)$/\1/p' Dockerfile)}
base_digest=""
if [[ "$base" != *@sha256:* ]] && base_digest=$("$CRANE" digest "$base" 2>/dev/null); then
  log "base $base: pinned to $base_digest"
  base="$base@$base_digest"
elif [[ "$base" == *@sha256:* ]]; then
  base_digest=${base##*@}
else
  log "base $base: no registry digest (registry unreachable or a local image): built from the tag"
fi
DOCKER_BUILDKIT=1 "$(buildkit_docker)" build --quiet -t "$image" --build-arg "PYTHON_IMAGE=$base" --build-arg "BASE_DIGEST=$base_digest" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url" . >/dev/null
said=$(docker run --rm "$image" --version)
[[ "$said" == "k8s-hosts-controller $version" ]] || die "the image says '$said', not version $version"
docker save -o "$out/image.tar" "$image"
log "image $image: $said, $(docker image inspect -f '{{.Size}}' "$image") bytes in the engine, $(stat -c %s "$out/image.tar") bytes saved"

# ---- 3. chart ---------------------------------------------------------------------------------------------
# The released chart's default image is the one pushed with it (the checkout's default is the GitHub one).
cp -r chart "$work/k8s-hosts-controller"
values="$work/k8s-hosts-controller/values.yaml"
sed -i "0,/^  repository: .*/s||  repository: $registry/k8s-hosts-controller|" "$values"
grep -q "^  repository: $registry/k8s-hosts-controller$" "$values" || die "could not set image.repository"
rm -f "$out"/k8s-hosts-controller-*.tgz
"$HELM" package "$work/k8s-hosts-controller" --version "$version" --app-version "$version" -d "$out" >/dev/null
chart_tgz="$out/k8s-hosts-controller-$version.tgz"
log "chart: $(basename "$chart_tgz") ($(stat -c %s "$chart_tgz") bytes), default image $image"

# ---- 4. push ----------------------------------------------------------------------------------------------
if [[ -n "$push" ]]; then
  "$CRANE" push "${insecure[@]}" "$out/image.tar" "$image" >/dev/null
  log "pushed $image ($("$CRANE" digest "${insecure[@]}" "$image"))"
  "$HELM" push "${http[@]}" "$chart_tgz" "oci://$registry/charts" 2>&1 | sed 's/^/  /' >&2
  log "pushed oci://$registry/charts/k8s-hosts-controller:$version"
fi
log "done in $((SECONDS - start))s"
echo "RELEASE_VERSION=$version"
echo "RELEASE_IMAGE=$image"
echo "RELEASE_CHART=oci://$registry/charts/k8s-hosts-controller"
