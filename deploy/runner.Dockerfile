# The deploy runner's image (docs/deploy.md): what `pulumi up` of the Kubernetes layer needs, baked in,
# because the enterprise preset's VPC has no NAT and cannot download anything at run time.
#
# Build and push where the internet is reachable (CI), tagged with the kit's version, which the
# CodeBuild project uses by default:
#   docker build -f deploy/runner.Dockerfile -t <deploy_image_repository>:<kit version> .
#   docker push <deploy_image_repository>:<kit version>
# Versions below match uv.lock: bump them together (tests/test_deploy.py checks they agree). The upstream
# Helm charts come from the one table in components/k8s/charts.py: nothing about them is written here.

# Where the image holds the upstream charts: charts.BUNDLE_DIR, which `deploy.charts: bundled` points at.
ARG CHART_BUNDLE=/opt/modelyard/charts

# --- stage 1: pull every upstream chart of the table with a pinned Helm CLI (not kept in the image) ---------
FROM public.ecr.aws/docker/library/python:3.11-slim-bookworm AS charts
ARG CHART_BUNDLE
ARG HELM_VERSION=3.19.5

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# Helm, checked against the checksum file Helm publishes beside the tarball.
RUN cd /tmp \
 && curl -fsSLO "https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz" \
 && curl -fsSLO "https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz.sha256sum" \
 && sha256sum -c "helm-v${HELM_VERSION}-linux-amd64.tar.gz.sha256sum" \
 && tar -xzf "helm-v${HELM_VERSION}-linux-amd64.tar.gz" -C /usr/local/bin --strip-components=1 linux-amd64/helm \
 && rm -f /tmp/helm-v*

# The table prints one chart a line: the file to write, its sha256 (or -) and the `helm pull` arguments. Each
# chart is pulled alone and renamed to <name>-<version>.tgz, whatever its repository calls the file; a
# known digest is checked. The module needs no package: a bare Python runs it.
COPY components/ /src/components/
WORKDIR /src
RUN set -eu; \
    work="$(mktemp -d)"; \
    python -m components.k8s.charts > "$work/charts"; \
    test -s "$work/charts"; \
    mkdir -p "$CHART_BUNDLE"; \
    while read -r file sha256 pull; do \
      mkdir "$work/pull"; \
      helm pull $pull --destination "$work/pull"; \
      mv "$work/pull"/*.tgz "$CHART_BUNDLE/$file"; \
      rmdir "$work/pull"; \
      if [ "$sha256" != - ]; then echo "$sha256  $CHART_BUNDLE/$file" | sha256sum -c -; fi; \
    done < "$work/charts"; \
    test "$(ls "$CHART_BUNDLE" | wc -l)" -eq "$(wc -l < "$work/charts")"; \
    rm -rf "$work"

# --- stage 2: the runner ------------------------------------------------------------------------------------
FROM public.ecr.aws/docker/library/python:3.11-slim-bookworm

ARG PULUMI_VERSION=3.272.0
ARG PULUMI_AWS_VERSION=7.51.1
ARG PULUMI_KUBERNETES_VERSION=4.34.2
ARG UV_VERSION=0.13.9

ENV PULUMI_HOME=/opt/pulumi \
    UV_CACHE_DIR=/opt/uv-cache \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    PATH=/opt/pulumi/bin:/usr/local/aws-cli/v2/current/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl unzip \
 && rm -rf /var/lib/apt/lists/*

# AWS CLI v2: the kubeconfig's token command (`aws eks get-token`).
RUN curl -fsSL "https://awscli.amazonaws.com/awscli-exe-linux-x86_64.zip" -o /tmp/awscli.zip \
 && unzip -q /tmp/awscli.zip -d /tmp && /tmp/aws/install && rm -rf /tmp/aws /tmp/awscli.zip

# The Pulumi CLI and the provider plugins the program uses (no plugin download at run time).
RUN mkdir -p /opt/pulumi/bin \
 && curl -fsSL "https://get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz" \
    | tar -xz -C /opt/pulumi/bin --strip-components=1 \
 && pulumi plugin install resource aws "v${PULUMI_AWS_VERSION}" \
 && pulumi plugin install resource kubernetes "v${PULUMI_KUBERNETES_VERSION}"

# The locked Python packages in uv's cache: the runner's `uv sync` (UV_OFFLINE=1) installs from it.
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY pyproject.toml uv.lock /opt/lock/
RUN cd /opt/lock && uv sync --locked --no-install-project --python python3.11 && rm -rf /opt/lock/.venv

# The upstream charts (deploy.charts: bundled): each Release of the Kubernetes layer reads its .tgz here.
ARG CHART_BUNDLE
COPY --from=charts ${CHART_BUNDLE} ${CHART_BUNDLE}

WORKDIR /codebuild
