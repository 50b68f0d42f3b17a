# The bsworker image: the CLI and this repository's jobs/, as docker-compose.yml runs them.
# `docker run <image>` prints the CLI's help; give it arguments to run a worker or a command:
#   docker run <image> --tubes emails --url beanstalk://beanstalkd:11300
#   docker run <image> stats --url beanstalk://beanstalkd:11300
#
# Node 26: the Active LTS line (LTS since October 2026, supported until April 2029). Node 20 reached
# its end of life in April 2026, and 24 is in maintenance. trixie is the Debian that node:26 is built on.
FROM node:26-trixie-slim AS build

WORKDIR /app

# Dependencies first, so editing the source does not invalidate the npm ci layer. vendor/ holds the
# bundled fivebeans, a workspace npm ci links. --ignore-scripts: `prepare` would build before the
# sources are copied in.
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# The image that runs: production dependencies, the build, the bin and the jobs. No src/, test/,
# bench/, scripts/ or TypeScript compiler, and no npm cache.
FROM node:26-trixie-slim

WORKDIR /app
ENV NODE_ENV=production

COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

# tsconfig.json: tsx reads it when it loads the TypeScript in jobs/.
COPY tsconfig.json ./
COPY bin ./bin
COPY jobs ./jobs
COPY --from=build /app/dist ./dist

# The files stay owned by root, so the running worker cannot modify its own code.
USER node

ENTRYPOINT ["node", "bin/bsworker"]
CMD ["--help"]
