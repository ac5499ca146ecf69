# syntax=docker/dockerfile:1
# Bastion's image (docs/production.md). Build and run one instance:
#
#   docker build -t bastion .
#   docker run --read-only --tmpfs /tmp --init \
#     -v bastion-data:/var/lib/bastion \
#     -v ./examples/production/single.yaml:/etc/bastion/bastion.yaml:ro \
#     -e BASTION_MASTER_KEY -e BASTION_ADMIN_KEY -e BASTION_AGENT_KEY \
#     -p 127.0.0.1:8790:8790 -p 127.0.0.1:8791:8791 bastion
#
# Several instances on PostgreSQL and Redis: compose.yaml. Other commands:
#   docker run --rm ... --entrypoint bastion bastion ca export
#
# Steps checked by test/packaging/pack.test.ts (no container daemon needed).

# 1. Build: the package exactly as npm publishes it. `npm pack` takes the files
#    listed in package.json#files; dist/verify (the `bastion/verify` entry) is
#    compiled first. Dev dependencies live only in this stage.
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.verify.json README.md DEPENDENCIES.md ./
COPY bin ./bin
COPY src ./src
COPY schema ./schema
RUN node node_modules/typescript/bin/tsc -p tsconfig.verify.json \
 && mkdir /pack \
 && npm pack --ignore-scripts --pack-destination /pack \
 && mv /pack/bastion-*.tgz /pack/bastion.tgz

# 2. Install: the packed files plus the lockfile, production dependencies only,
#    at the versions the lockfile pins; no install scripts run.
FROM node:24-slim AS install
WORKDIR /opt/bastion
COPY --from=build /pack/bastion.tgz /tmp/bastion.tgz
COPY package-lock.json ./
RUN tar -xzf /tmp/bastion.tgz --strip-components=1 --no-same-owner \
 && rm /tmp/bastion.tgz
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 3. Run: root-owned, read-only code; one writable folder for state.
FROM node:24-slim
COPY --from=install /opt/bastion /opt/bastion
# /var/lib/bastion is the only place Bastion writes (the SQLite store, the vault
# key file when BASTION_MASTER_KEY is unset); with the PostgreSQL store it stays
# empty. Mode 0700 and owned by the runtime user (uid 1000, `node` in this image),
# so a named volume mounted there inherits both.
RUN ln -s /opt/bastion/bin/bastion.js /usr/local/bin/bastion \
 && mkdir -p /etc/bastion /var/lib/bastion \
 && chown 1000:1000 /var/lib/bastion \
 && chmod 0700 /var/lib/bastion
ENV BASTION_CONFIG=/etc/bastion/bastion.yaml \
    BASTION_LISTEN=0.0.0.0:8790 \
    BASTION_EGRESS_LISTEN=0.0.0.0:8791 \
    HOME=/var/lib/bastion \
    TMPDIR=/tmp \
    MALLOC_ARENA_MAX=2
WORKDIR /var/lib/bastion
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# 8790: MCP, the model door, the admin API, /healthz and /readyz. 8791: the egress proxy.
EXPOSE 8790 8791
# Liveness only (the process answers); /readyz also checks the store and Redis.
# No curl in the slim image: Node's fetch, on the port BASTION_LISTEN names.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.BASTION_LISTEN||':8790').split(':').pop()+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["bastion", "serve"]
