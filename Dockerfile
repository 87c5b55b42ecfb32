# syntax=docker/dockerfile:1
# The modeldeploy image: the operator (`modeldeploy run`, the default) and the model-fetching
# init container of every served model (`modeldeploy fetch-model ...`) are this one image.
#
#   docker build -t ghcr.io/modeldeploy/modeldeploy:0.1.0 .
#
# tests/unit/test_dockerfile.py runs the same pip steps outside Docker and lints this file.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Wheels of the package and of every dependency, so the final stage installs offline.
RUN pip wheel . --wheel-dir /wheels

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="modeldeploy" \
      org.opencontainers.image.description="Kubernetes operator for deploying ML models" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels are bind-mounted, not copied, so they leave no layer behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --root-user-action=ignore --no-index --find-links=/wheels /wheels/modeldeploy-*.whl \
    && groupadd --gid 65532 modeldeploy \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin modeldeploy
# The root filesystem is read-only in the pod: Python must not write bytecode next to the
# sources (pip compiled it at install), and everything that writes a file (the discovery
# cache, downloads in progress) goes to /tmp, an emptyDir in every pod that runs this image.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /tmp
# Numeric, so that the kubelet can verify runAsNonRoot without reading /etc/passwd; the group is
# created with gid 65532 first (useradd --user-group would give it the next free gid, 1000), so
# that the gid the image runs with has a name.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["modeldeploy"]
CMD ["run"]
