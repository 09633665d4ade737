#!/bin/sh
# Same dispatch as the registry:3 image's entrypoint: a config path alone means `registry serve <config>`.
set -e
case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
