# One image, three targets. Build context: the repository root (.dockerignore keeps node_modules,
# dist, .fluxgate, .env and .git out of it). Debian (bookworm) everywhere: uWebSockets.js ships
# glibc binaries only, so Alpine/musl would not load it.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY contracts/package.json contracts/
COPY data-plane/package.json data-plane/
COPY control-plane/package.json control-plane/
COPY frontend/package.json frontend/
RUN npm ci --no-audit --no-fund
COPY contracts contracts
COPY data-plane data-plane
COPY control-plane control-plane
COPY frontend frontend
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/package.json ./
COPY --from=build /app/contracts/package.json contracts/
COPY --from=build /app/contracts/dist contracts/dist
COPY init.sql ./
# Writable places for the unprivileged user: generated state, and the frontend certificate's
# volume (a new named volume takes this directory's owner).
RUN mkdir -p /app/certs /tmp/fluxgate && chown node:node /app/certs /tmp/fluxgate
ENV FLUXGATE_STATE_DIR=/tmp/fluxgate
USER node

FROM runtime AS data-plane
COPY --from=build /app/data-plane/package.json data-plane/
COPY --from=build /app/data-plane/dist data-plane/dist
# The SPA on the data plane's own origin (Kubernetes; under compose nginx serves it instead).
COPY --from=build /app/frontend/dist frontend/dist
ENV INIT_SQL_PATH=/app/init.sql
EXPOSE 8443 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
  CMD ["node", "-e", "require('https').get({host:'127.0.0.1',port:process.env.PUBLIC_PORT||8443,path:'/healthz',rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
CMD ["node", "data-plane/dist/main.js"]

FROM runtime AS control-plane
COPY --from=build /app/control-plane/package.json control-plane/
COPY --from=build /app/control-plane/dist control-plane/dist
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.CONTROL_PLANE_PORT||8000,path:'/healthz'},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
CMD ["node", "control-plane/dist/main.js"]

# nginx's master process starts as root to read the certificate and bind; its workers run as the
# unprivileged `nginx` user.
FROM nginx:1.27-bookworm AS frontend
COPY nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=build /app/frontend/dist /usr/share/nginx/html
EXPOSE 8443
# The TLS port accepts connections (bash's /dev/tcp: the image need not carry curl).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=5 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8443"]
