# syntax=docker/dockerfile:1

# The Node image every stage starts from: a pinned Node 24 release on Debian bookworm (slim).
ARG NODE_IMAGE=node:24.22.1-bookworm-slim

# 1. dependencies: every package in the lockfile, dev ones included (the build stage needs them).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund

# 2. build: there is no JavaScript to emit (Node strips the types at run time), so "build" means
# type-checking the whole tree. The compose `test` service runs the test suite in this stage.
FROM deps AS build
COPY . .
RUN npm run typecheck

# 3. production dependencies only, for the runtime image. `--omit=optional` too: TypeScript is an
# optional peer of valibot, which would otherwise keep it ("devOptional") in the image.
FROM deps AS prod-deps
RUN npm prune --omit=dev --omit=optional --no-audit --no-fund

# 4. the runtime's code: what the build stage type-checked, less the tests.
FROM build AS app
RUN find functions lib db -name '*.test.ts' -delete

# 5. runtime: production dependencies and the code the server runs. Everything is owned by root
# (COPY's default) and read-only to the unprivileged `node` user the server runs as: a compromised
# process cannot rewrite the code or the dependencies it runs.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
# From the build stage (through `app`), so that an image is only ever built from code that type-checks.
COPY --from=app /app/package.json ./package.json
COPY --from=app /app/functions ./functions
COPY --from=app /app/lib ./lib
COPY --from=app /app/db ./db
# The operator's commands (npm run db:migrate, reconcile, reindex), and the Node check of `npm start`.
COPY --from=app /app/scripts/migrate.ts /app/scripts/reconcile.ts /app/scripts/reindex.ts /app/scripts/check-node.js ./scripts/
USER node
EXPOSE 3000
# The slim image has no curl: Node's fetch asks the liveness endpoint.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "functions/server.ts"]
