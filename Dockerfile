# syntax=docker/dockerfile:1
# claude-openai-proxy as a container image (README "Container"): the proxy's single-file binary
# (bun build --compile) and the claude CLI's native binary from npm on Debian slim, run by a
# non-root user. No Node.js at run time. The CLI's login lives in a volume (CLAUDE_CONFIG_DIR) or
# comes from CLAUDE_CODE_OAUTH_TOKEN at run time, never from the image.
#
#   docker build -t claude-openai-proxy .
#   docker buildx build --platform linux/amd64,linux/arm64 -t claude-openai-proxy .
#
# The two build stages run on the build machine's platform and cross-compile or download for the
# target one (no emulation); only the last stage runs on the target platform.
# `npm run lint:dockerfile` (part of `npm test`) checks this file, CLAUDE_CODE_VERSION included.

# The claude CLI release: package.json's devDependency @anthropic-ai/claude-code, the newest
# tested release (src/claude/supported.ts). The release workflow passes it from package.json.
ARG CLAUDE_CODE_VERSION=2.1.332

# The proxy, compiled for the target by scripts/build.ts with the Bun of package-lock.json.
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS proxy
ARG TARGETARCH
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
RUN case "$TARGETARCH" in \
      amd64) target=linux-x64 ;; \
      arm64) target=linux-arm64 ;; \
      *) echo "Unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && node_modules/.bin/bun scripts/build.ts --target "$target" --out /build \
 && install -D -m 0755 "/build/$target/claude-openai-proxy" /out/claude-openai-proxy

# The claude CLI: the native binary of its npm platform package, the file that
# @anthropic-ai/claude-code's postinstall puts in place of `claude` (glibc build).
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS cli
ARG TARGETARCH
ARG CLAUDE_CODE_VERSION
WORKDIR /cli
RUN case "$TARGETARCH" in \
      amd64) arch=x64 ;; \
      arm64) arch=arm64 ;; \
      *) echo "Unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && npm pack --silent "@anthropic-ai/claude-code-linux-$arch@$CLAUDE_CODE_VERSION" \
 && tar -xzf "anthropic-ai-claude-code-linux-$arch-$CLAUDE_CODE_VERSION.tgz" \
 && install -D -m 0755 package/claude /out/claude

FROM debian:bookworm-slim
ARG CLAUDE_CODE_VERSION
# curl: the HEALTHCHECK; tini: PID 1, reaps orphaned processes and passes SIGTERM to the proxy
# alone (not to its process group: the proxy ends its own claude runs after --shutdown-grace).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 claude \
 && useradd --uid 1000 --gid claude --create-home --home-dir /home/claude --shell /bin/bash claude \
 && install -d -o claude -g claude -m 0700 /home/claude/.claude /data
COPY --from=cli /out/claude /usr/local/bin/claude
COPY --from=proxy /out/claude-openai-proxy /usr/local/bin/claude-openai-proxy
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
LABEL org.opencontainers.image.title="claude-openai-proxy" \
      org.opencontainers.image.description="OpenAI-compatible HTTP API in front of the claude CLI (Claude Code)" \
      org.opencontainers.image.licenses="MIT" \
      claude-code.version="$CLAUDE_CODE_VERSION"
# Every interface inside the container; the proxy then refuses to start without API_KEYS
# (ALLOW_PUBLIC_WITHOUT_KEYS=true overrides that). The CLI's login and config, and the proxy's
# usage totals and stored responses, each live in a volume. The CLI in the image never updates
# itself: a new image brings a new CLI.
ENV HOST=0.0.0.0 \
    PORT=3456 \
    CLAUDE_CONFIG_DIR=/home/claude/.claude \
    DATA_DIR=/data \
    DISABLE_AUTOUPDATER=1
VOLUME ["/home/claude/.claude", "/data"]
USER claude
WORKDIR /home/claude
EXPOSE 3456
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["docker-entrypoint.sh", "healthcheck"]
ENTRYPOINT ["tini", "--", "docker-entrypoint.sh"]
