# One image for all seven services: `node services/<name>/dist/main.js` picks the service (compose.yaml
# sets the command of each). Build: `docker compose build` or `docker build -t dicomflow:local .`.
# Run it with an init process (compose: `init: true`; docker run: `--init`) so signals and orphans are
# handled as they should be for PID 1.
ARG NODE_IMAGE=node:24-slim

# --- package manifests only: `npm ci` layers are reused until a manifest or the lock changes ----------
FROM ${NODE_IMAGE} AS manifests
WORKDIR /opt/dicomflow
COPY package.json package-lock.json ./
# The root package's preinstall (npm ci) checks the Node version with these.
COPY scripts/check-node.mjs scripts/preflight.mjs scripts/
# Every workspace of package.json (a test in test/compose checks that none is missing here).
COPY packages/messages/package.json packages/messages/
COPY packages/config/package.json packages/config/
COPY packages/runtime/package.json packages/runtime/
COPY packages/broker/package.json packages/broker/
COPY packages/storage/package.json packages/storage/
COPY packages/database/package.json packages/database/
COPY packages/dicom/package.json packages/dicom/
COPY packages/flows/package.json packages/flows/
COPY packages/cli/package.json packages/cli/
COPY services/storescp/package.json services/storescp/
COPY services/fingerprinter/package.json services/fingerprinter/
COPY services/scheduler/package.json services/scheduler/
COPY services/consumer/package.json services/consumer/
COPY services/sender/package.json services/sender/
COPY services/static-storage/package.json services/static-storage/
COPY services/flow-tracker/package.json services/flow-tracker/
COPY test/helpers/package.json test/helpers/

# --- compile TypeScript (needs the dev dependencies) ----------------------------------------------------
FROM manifests AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY packages packages
COPY services services
COPY test/helpers test/helpers
# What the runtime image takes from here is package.json + dist (+ assets such as schemas/): no sources,
# no compiled tests or test harnesses, no dev node_modules.
# The TCP_QUICKACK addon (packages/runtime/native) needs a C compiler; without one (no Debian mirror
# reachable) the build goes on and the services run without it, as they say at start.
RUN (command -v cc >/dev/null || (apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
  && rm -rf /var/lib/apt/lists/*) || echo "no C compiler: building without TCP_QUICKACK") \
  && node packages/runtime/scripts/build-native.mjs
RUN npx tsc --build \
  && rm -rf packages/*/src services/*/src services/*/dist/testing packages/*/node_modules services/*/node_modules \
  && find packages services -path '*/dist/*' \( -name '*.test.*' -o -name '*.tsbuildinfo' \) -exec rm -f {} +

# --- production dependencies only ---------------------------------------------------------------------
FROM manifests AS production-dependencies
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- the runtime image ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# No configuration keys here: environment variables win over conf.d, so an ENV would hide a conf.d setting.
# The built-in defaults already name the folders below (/opt/dicomflow/..., /var/lib/dicomflow/...).
ENV NODE_ENV=production
WORKDIR /opt/dicomflow
COPY --from=production-dependencies /opt/dicomflow ./
COPY --from=build /opt/dicomflow/packages packages
COPY --from=build /opt/dicomflow/services services
COPY conf.d conf.d
COPY scripts/ensure-buckets.mjs scripts/
# The work folders (storescp's spool, the sender's unpack folder) belong to the unprivileged user; a new named
# volume mounted on one of them inherits that owner.
RUN mkdir -p /var/lib/dicomflow/spool /var/lib/dicomflow/sender /opt/dicomflow/flows /opt/dicomflow/static \
  && chown -R node:node /var/lib/dicomflow
USER node
EXPOSE 10000 8080 8081 9101 9102 9103 9104 9105
CMD ["node", "packages/cli/dist/bin.js", "--help"]
