# The orchestrator: the API (default command) and, with another command, the reconciler or the
# migrations. Build with scripts/build-orchestrator-image.sh (--local-base where no registry is
# reachable) or `docker compose build`.
#
# It drives sandboxes through the host's Docker engine: mount the socket and give the user the
# socket's group, whose id differs between hosts:
#   docker run -v /var/run/docker.sock:/var/run/docker.sock:ro \
#     --group-add "$(stat -c %g /var/run/docker.sock)" ... matrx-orchestrator:latest
# The image holds no Docker CLI, so it cannot build the sandbox image: run `npm run image` on the
# host first.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
# The compiled command channel (a static binary the service puts into each sandbox) needs a C
# compiler and the static C library; without them the build leaves it out and commands take the
# bash channel.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# No dependency needs its install script: ssh2's and cpu-features' native parts are optional
# (dockerode reaches the engine over the socket), the rest print notices or send telemetry.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

FROM ${BASE_IMAGE}
ENV NODE_ENV=production \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true \
    SLS_TELEMETRY_DISABLED=1 \
    SLS_NOTIFICATIONS_MODE=off
# A fixed uid (10001) that mounts can be given to, and a home of its own: serverless writes
# ~/.serverless, so with a read-only root, /home/matrx and /tmp need a tmpfs. The app stays
# root-owned, so the process cannot rewrite its own code.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/matrx --shell /usr/sbin/nologin matrx
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && rm -rf "$(npm config get cache)"
COPY serverless.yml ./
COPY migrations ./migrations
COPY sandbox-image ./sandbox-image
COPY --from=build /app/dist ./dist

USER matrx
EXPOSE 8000
# strict: a server that cannot reach Docker or its database is up but not healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "-e", "const h = process.env.MATRX_HOST; const host = !h || h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h; fetch(`http://${host}:${process.env.MATRX_PORT || 8000}/health?strict=1`, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));"]
CMD ["node", "dist/scripts/serve.js"]
