#!/usr/bin/env bash
# Smoke test of a built container image (the release workflow's image job):
#   usage: scripts/ci/docker-smoke.sh IMAGE CLI_VERSION PROXY_VERSION
# - without a login the entrypoint refuses to start (exit 2, says how to log in);
# - without API keys the proxy refuses to listen on 0.0.0.0 (exit 2);
# - `--version` prints PROXY_VERSION;
# - started with a key and a (dummy) CLAUDE_CODE_OAUTH_TOKEN: /health answers "ok" with the
#   claude CLI CLI_VERSION inside the tested range, /v1/models needs the key, the process runs as
#   a non-root user, Docker's HEALTHCHECK turns healthy;
# - `docker stop` (SIGTERM) ends it cleanly: exit 0, "stopped" logged.
set -euo pipefail
image="$1"
cli_version="$2"
version="$3"
key="smoke-$RANDOM$RANDOM"
name="claude-openai-proxy-smoke-$$"
port=3456

fail() {
  echo "::error::docker smoke: $*"
  exit 1
}

echo "== no login: refused"
set +e
out="$(docker run --rm -e API_KEYS="$key" "$image" 2>&1)"
code=$?
set -e
echo "$out"
[ "$code" = 2 ] || fail "expected exit 2 without a login, got $code"
grep -q "claude setup-token" <<<"$out" || fail "the no-login message does not mention claude setup-token"

echo "== no API keys: refused"
set +e
out="$(docker run --rm -e CLAUDE_CODE_OAUTH_TOKEN=smoke "$image" 2>&1)"
code=$?
set -e
echo "$out"
[ "$code" = 2 ] || fail "expected exit 2 without API keys, got $code"
grep -q "refusing to listen" <<<"$out" || fail "no refusal message without API keys"

echo "== --version"
printed="$(docker run --rm "$image" --version)"
[ "$printed" = "$version" ] || fail "--version printed '$printed', expected '$version'"

echo "== start"
docker run -d --name "$name" -p "127.0.0.1:$port:3456" \
  -e API_KEYS="$key" -e CLAUDE_CODE_OAUTH_TOKEN=smoke \
  --health-interval=2s --health-start-period=10s "$image" >/dev/null
cleanup() {
  docker logs "$name" 2>&1 | tail -n 50 || true
  docker rm -f "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

health=""
for _ in $(seq 1 60); do
  if health="$(curl -fsS -H "Authorization: Bearer $key" "http://127.0.0.1:$port/health")"; then
    break
  fi
  sleep 1
done
[ -n "$health" ] || fail "/health did not answer within 60 s"
echo "$health" | jq .
[ "$(jq -r .status <<<"$health")" = ok ] || fail "/health status is not ok"
jq -e --arg v "$cli_version" '.claude.version | startswith($v)' <<<"$health" >/dev/null ||
  fail "the image's claude CLI is not $cli_version"
[ "$(jq -r .claude.supported <<<"$health")" = yes ] || fail "the claude CLI is outside the tested range"

status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/models")"
[ "$status" = 401 ] || fail "/v1/models without a key answered $status, expected 401"

uid="$(docker exec "$name" id -u)"
[ "$uid" != 0 ] || fail "the proxy runs as root"

state=""
for _ in $(seq 1 60); do
  state="$(docker inspect -f '{{.State.Health.Status}}' "$name")"
  [ "$state" = healthy ] && break
  sleep 1
done
[ "$state" = healthy ] || fail "Docker's HEALTHCHECK says '$state'"

echo "== stop"
docker stop -t 30 "$name" >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$name")"
[ "$code" = 0 ] || fail "exit code $code after docker stop, expected 0"
docker logs "$name" 2>&1 | grep -q '"msg":"stopped"' || fail "no 'stopped' log line after SIGTERM"
echo "docker smoke: OK"
