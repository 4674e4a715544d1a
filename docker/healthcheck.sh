#!/bin/sh
# Container health: is something listening on the node's Akka.Remote port ($SCST_PORT, default 4053)?
# Reads /proc/net/tcp{,6} instead of connecting, so the probe never opens an Akka association and
# needs no curl/nc in the image. State 0A is TCP_LISTEN; the local port is the hex after the colon.
port=${1:-${SCST_PORT:-4053}}
case $port in ''|*[!0-9]*) echo "healthcheck: port '$port' is not a number" >&2; exit 2 ;; esac
hex=$(printf '%04X' "$port")
for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    if awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' "$f"; then
        exit 0
    fi
done
echo "healthcheck: nothing listens on port $port" >&2
exit 1
