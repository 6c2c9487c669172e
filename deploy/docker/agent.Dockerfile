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
# @kubernetes/client-node. tsx (a root devDependency) is installed on its own at the version
# the lockfile pins.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY proto/package.json proto/
COPY shared/package.json shared/
COPY agent/package.json agent/
RUN npm ci --omit=dev --no-audit --no-fund \
      --workspace @flotilla/agent --workspace @flotilla/shared --workspace @flotilla/proto \
 && mkdir -p proto/node_modules shared/node_modules agent/node_modules
RUN TSX_VERSION="$(node -p "require('./package-lock.json').packages['node_modules/tsx'].version")" \
 && npm install --prefix /opt/tsx --no-save --no-audit --no-fund --omit=dev "tsx@${TSX_VERSION}" \
 && cp -rn /opt/tsx/node_modules/. /app/node_modules/

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    TMPDIR=/tmp \
    HOME=/home/flotilla
RUN groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --home-dir /home/flotilla --create-home flotilla \
 && mkdir -p /var/lib/flotilla-agent && chown -R flotilla:flotilla /var/lib/flotilla-agent
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# npm keeps a package's own versions under <workspace>/node_modules when they differ from the
# hoisted ones (e.g. the agent's @kubernetes/client-node): copy those too.
COPY --from=deps /app/proto/node_modules ./proto/node_modules
COPY --from=deps /app/shared/node_modules ./shared/node_modules
COPY --from=deps /app/agent/node_modules ./agent/node_modules
COPY package.json tsconfig.json ./
COPY proto/ proto/
COPY shared/ shared/
COPY agent/ agent/
USER 10001:10001
# The state dir keeps the last good bundle and the status outbox (offline enforcement and
# no lost reports across restarts); /tmp must be writable (tsx's cache).
VOLUME ["/var/lib/flotilla-agent"]
ENTRYPOINT ["node", "/app/agent/bin/flotilla-agent.js"]
CMD ["run", "--in-cluster", "--state-dir", "/var/lib/flotilla-agent"]
