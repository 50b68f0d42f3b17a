# The bsworker image.
FROM node:20-bookworm-slim

WORKDIR /app

# Dependencies first, so editing the source does not invalidate the npm ci layer.
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied in.
RUN npm ci --ignore-scripts

COPY . .
# Dev dependencies (typescript) are needed to build and nothing after; the npm cache is dead weight.
RUN npm run build \
    && npm prune --omit=dev \
    && npm cache clean --force

ENV NODE_ENV=production
# The files stay owned by root, so the running worker cannot modify its own code.
USER node

CMD ["node", "bin/bsworker"]
