#!/bin/sh
# Entry point for cluster nodes in containers (compose sets it; a plain `docker run` uses dotnet directly).
# Writes the per-container HOCON that a static file cannot hold, then runs the node with it as the first
# --hocon file (files given later, e.g. docker/hocon/*.conf, still win):
#   - akka.remote.dot-netty.tcp.public-hostname: $SCST_PUBLIC_HOSTNAME, else this container's hostname, which
#     Docker's DNS resolves for the other containers (a scaled replica's hostname is its short id);
#   - scst.persistence.connection-string: $SCST_PG_CONNECTION_STRING, when set.
set -eu
conf=${SCST_NODE_CONF:-/tmp/scst-node.conf}
app=${SCST_APP:-/app/Scst.Host.dll}
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
advertise=${SCST_PUBLIC_HOSTNAME:-$(hostname)}
{
    echo "# written by scst-node at start"
    echo "akka.remote.dot-netty.tcp.public-hostname = $(quote "$advertise")"
    if [ -n "${SCST_PG_CONNECTION_STRING:-}" ]; then
        echo "scst.persistence.connection-string = $(quote "$SCST_PG_CONNECTION_STRING")"
    fi
} > "$conf"
exec dotnet "$app" --hocon "$conf" "$@"
