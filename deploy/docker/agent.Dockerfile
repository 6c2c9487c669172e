# syntax=docker/dockerfile:1.7
#
# The Flotilla agent (`flotilla-agent join|run|import|status export`).
#
# Build context: the repository root. Its ignore file is agent.Dockerfile.dockerignore, next
# to this file (BuildKit reads <Dockerfile>.dockerignore).
#
#   docker build -f deploy/docker/agent.Dockerfile -t flotilla-agent .
#
# One process, no sidecars, no kubectl: the agent talks to the API server with
# its own small client over node's http(s) (credentials from @kubernetes/client-node's
# KubeConfig), and ships as an esbuild bundle run by plain node.
ARG NODE_IMAGE=node:20-bookworm-slim

# Build: the agent and its dependencies bundled by esbuild (agent/build.mjs): an entry file and
# the chunks that join, the air-gap commands, /metrics and pretty logs load when they run.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY proto/package.json proto/
COPY shared/package.json shared/
COPY agent/package.json agent/
RUN npm ci --omit=dev --no-audit --no-fund \
      --workspace @flotilla/agent --workspace @flotilla/shared --workspace @flotilla/proto
# esbuild (a devDependency) on its own, at the version the lockfile pins.
RUN ESBUILD_VERSION="$(node -p "require('./package-lock.json').packages['node_modules/esbuild'].version")" \
 && npm install --prefix /opt/esbuild --no-save --no-audit --no-fund "esbuild@${ESBUILD_VERSION}" \
 && cp -rn /opt/esbuild/node_modules/. /app/node_modules/
COPY tsconfig.json ./
COPY proto/ proto/
COPY shared/ shared/
COPY agent/ agent/
COPY scripts/esbuild-bundle.mjs scripts/
RUN node agent/build.mjs

# Run: node and the bundle (about 2.2 MB in all). Measured with `npm run bench:agent`: 76–93 MiB
# RSS idle with a small bundle, 116–126 MiB holding 500 objects (README, Measured).
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOME=/home/flotilla
RUN groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --home-dir /home/flotilla --create-home flotilla \
 && mkdir -p /var/lib/flotilla-agent && chown -R flotilla:flotilla /var/lib/flotilla-agent
WORKDIR /app
COPY --from=build /app/agent/dist/*.mjs /app/agent/dist/*.LEGAL.txt ./
USER 10001:10001
# The state dir keeps the last good bundle and the status outbox (offline enforcement and
# no lost reports across restarts).
VOLUME ["/var/lib/flotilla-agent"]
# /healthz, /readyz and /metrics (`--metrics-addr`), for the kubelet's probes and Prometheus.
EXPOSE 8080
ENTRYPOINT ["node", "/app/flotilla-agent.mjs"]
CMD ["run", "--in-cluster", "--state-dir", "/var/lib/flotilla-agent", "--metrics-addr", ":8080"]
