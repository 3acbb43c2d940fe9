#!/bin/sh
# Entry point of the container image (Dockerfile; README "Container").
#
#   (no arguments) or --flags   check that the claude CLI has a login, then exec the proxy with
#                               the flags (settings also come from the environment: PORT, API_KEYS)
#   healthcheck                 the image's HEALTHCHECK: exit 0 when GET /health says "ok"
#   claude-openai-proxy ...     the same as the flags alone; --help and --version need no login
#   any other command           exec'd as given, no login check (`claude setup-token`,
#                               `claude auth login`, `sh`)
#
# The proxy is exec'd, so it is the process that tini (PID 1) sends SIGTERM to on `docker stop`:
# it stops taking requests, lets running ones finish (--shutdown-grace), then ends its claude runs.
# Exit 2 with a message when the CLI has no login or its config directory is unusable.
set -eu

say() {
  printf '%s\n' "claude-openai-proxy (container): $*" >&2
}

if [ "${1-}" = healthcheck ]; then
  if ! body=$(curl -fsS --max-time 4 "http://127.0.0.1:${PORT:-3456}/health"); then
    say "GET /health on port ${PORT:-3456} failed"
    exit 1
  fi
  case $body in
    *'"status":"ok"'*) exit 0 ;;
  esac
  say "GET /health: $body"
  exit 1
fi

case ${1-} in
  claude-openai-proxy) shift ;;
  '' | -*) ;;
  *) exec "$@" ;;
esac
case ${1-} in
  -h | --help | -v | --version) exec claude-openai-proxy "$@" ;;
esac

config_dir=${CLAUDE_CONFIG_DIR:-$HOME/.claude}
if [ ! -d "$config_dir" ] || [ ! -w "$config_dir" ]; then
  say "the claude CLI's config directory $config_dir is missing or not writable by uid $(id -u)." \
    "Mount a named volume there (-v claude-config:$config_dir), or chown a bind-mounted" \
    "directory to $(id -u):$(id -g)"
  exit 2
fi

case ${SKIP_LOGIN_CHECK:-} in
  1 | true | yes | on) exit_code=0 ;;
  *)
    # The CLI itself says whether it has a login (credentials in $config_dir, an OAuth token, an
    # API key, a cloud provider): `claude auth status` exits 0 or 1 without going online. Run
    # with the environment the proxy will give it: without ANTHROPIC_API_KEY when it drops it.
    drop=''
    case ${DROP_ANTHROPIC_API_KEY:-} in 1 | true | yes | on) drop='-u ANTHROPIC_API_KEY' ;; esac
    exit_code=0
    # shellcheck disable=SC2086 # $drop is one option or nothing
    env $drop timeout 60 "${CLAUDE_PATH:-claude}" auth status >/dev/null 2>&1 || exit_code=$?
    ;;
esac
case $exit_code in
  0) ;;
  1)
    say "the claude CLI is not logged in (config directory $config_dir)." \
      "Either set CLAUDE_CODE_OAUTH_TOKEN to a token from \`claude setup-token\` (run it on a" \
      "machine with a browser, or here: docker run --rm -it IMAGE claude setup-token), or log" \
      "in once into the config volume: docker run --rm -it -v claude-config:$config_dir IMAGE" \
      "claude auth login. SKIP_LOGIN_CHECK=1 skips this check"
    exit 2
    ;;
  *)
    say "could not check the claude CLI's login (\`claude auth status\` exited $exit_code);" \
      "starting anyway: /health will show what is wrong"
    ;;
esac

exec claude-openai-proxy "$@"
