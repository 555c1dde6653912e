# conntrack-exporter: one per node, in the host network namespace, with CAP_NET_ADMIN.
#   docker build -t conntrack-exporter .
#   docker run --rm --network host --cap-drop ALL --cap-add NET_ADMIN conntrack-exporter
# Debian (glibc) on both stages: the netlink package ships glibc prebuilds, and our socket-option
# addon (native/) is compiled here against the same Node.js that runs it.

FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY native ./native
# builds native/build/Release/netlink.node (the package's install script)
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
COPY scripts ./scripts
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim
LABEL org.opencontainers.image.title="conntrack-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Linux netfilter connection tracking" \
      org.opencontainers.image.licenses="MIT"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/native/build/Release/netlink.node ./native/build/Release/netlink.node
# ctnetlink needs CAP_NET_ADMIN, which a non-root user only gets through file capabilities on
# the node binary; in a container the capability set is granted to the (root) process instead.
USER root
EXPOSE 9466
ENTRYPOINT ["node", "dist/src/main.js"]
