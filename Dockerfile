# One image, three targets. Build context: the repository root.
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
USER node

FROM runtime AS data-plane
COPY --from=build /app/data-plane/package.json data-plane/
COPY --from=build /app/data-plane/dist data-plane/dist
ENV INIT_SQL_PATH=/app/init.sql
EXPOSE 8443
CMD ["node", "data-plane/dist/main.js"]

FROM runtime AS control-plane
COPY --from=build /app/control-plane/package.json control-plane/
COPY --from=build /app/control-plane/dist control-plane/dist
EXPOSE 8000
CMD ["node", "control-plane/dist/main.js"]

FROM nginx:1.27-bookworm AS frontend
COPY nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=build /app/frontend/dist /usr/share/nginx/html
