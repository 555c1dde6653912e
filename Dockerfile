# conntrack-exporter: one per node, in the host network namespace, with CAP_NET_ADMIN.
#   docker build -t conntrack-exporter .
#   docker run --rm --network host --cap-drop ALL --cap-add NET_ADMIN conntrack-exporter
# Both stages on the same base (Debian trixie, glibc, the same Node.js): native addons compiled
# in the first stage run in the second. The tag pins Node.js to the patch release; pin the digest
# too (node:24.21.0-trixie-slim@sha256:...) where your registry policy asks for it.
ARG BASE=node:24.21.0-trixie-slim

# Build: compilers, dev dependencies, TypeScript. None of it reaches the final image.
FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY native ./native
# also builds the native addon(s) in native/build/Release (the package's install script)
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
COPY scripts ./scripts
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# Runtime: the base image's Node.js, the compiled exporter, production dependencies, the addon.
FROM ${BASE}
LABEL org.opencontainers.image.title="conntrack-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Linux netfilter connection tracking" \
      org.opencontainers.image.licenses="MIT"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/native/build/Release/*.node ./native/build/Release/
# ctnetlink needs CAP_NET_ADMIN, which a non-root user only gets through file capabilities on
# the node binary; in a container the capability set is granted to the (root) process instead.
USER root
EXPOSE 9466
ENTRYPOINT ["node", "dist/src/main.js"]
