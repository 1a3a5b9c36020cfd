# k8s-hosts-controller image, run by the Helm chart in ./chart.
#
#   docker build -t k8s-hosts-controller:0.1.0 .
#   kind load docker-image k8s-hosts-controller:0.1.0 --name hosts-sync
#
# scripts/release.sh builds the released image with the build arguments below: VERSION (controller.__version__),
# REVISION (the git commit), SOURCE, and PYTHON_IMAGE pinned by digest (python:...@sha256:..., resolved from
# the registry at release time; BASE_DIGEST records it) where the registry answers. Offline (the e2e) the base
# is a local image that has no registry digest, so the tag is kept (docs/install.md).
#
# Stage 1 builds the project's wheel and the wheels of its dependencies; stage 2 installs them offline from
# that directory (mounted, never copied into a layer), so the final image holds no build tools, no sources
# and no pip cache.
#
# BuildKit's built-in Dockerfile frontend (Docker >= 20.10) has everything used here (RUN --mount), so there
# is no `# syntax=` line: that would pull a frontend image, and the build would fail where no registry answers.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# README.md is the package's readme in pyproject.toml (the glob keeps the build working while it is absent).
COPY pyproject.toml README.md* ./
COPY controller/ ./controller/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
# VERSION must equal controller.__version__ (tests/unit/test_version.py); the image checks it below.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/TykTechnologies/k8s-hosts-controller
ARG BASE_DIGEST=""
LABEL org.opencontainers.image.title="k8s-hosts-controller" \
      org.opencontainers.image.description="Keeps Kubernetes Ingress hostnames in a marked block of /etc/hosts" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}" \
      org.opencontainers.image.base.digest="${BASE_DIGEST}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Only the wheels built above; --no-index: nothing is fetched from a registry in this stage.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/k8s_hosts_controller-*.whl \
    && test "$(k8s-hosts-controller --version)" = "k8s-hosts-controller ${VERSION}"
# No USER: the chart runs the process as uid 0 (the host's /etc/hosts is root-owned) with every capability
# dropped, no privilege escalation and a read-only root filesystem.
EXPOSE 8080
ENTRYPOINT ["k8s-hosts-controller"]
