# The deploy runner's image (docs/deploy.md): what `pulumi up` of the Kubernetes layer needs, baked in,
# because the enterprise preset's VPC has no NAT and cannot download anything at run time.
#
# Build and push where the internet is reachable (CI), tagged with the kit's version, which the
# CodeBuild project uses by default:
#   docker build -f deploy/runner.Dockerfile -t <deploy_image_repository>:<kit version> .
#   docker push <deploy_image_repository>:<kit version>
# Versions below match uv.lock: bump them together (tests/test_deploy.py checks they agree).
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

WORKDIR /codebuild
