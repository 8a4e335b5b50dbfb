#!/bin/sh
# Entry point of the redis image (Debian's redis-server), standing in for valkey: with no arguments, or with
# options only, it runs the server in the foreground on port 6379 of every address, protected mode off (the
# network policies decide who connects) and its files in /data, as the valkey image does. A first argument of
# redis-server or valkey-server (optionally followed by a configuration file) gets the same defaults; any other
# command runs as given (redis-cli and valkey-cli are both there).
set -eu

case "${1:-}" in
  "" | -*) set -- redis-server "$@" ;;
  valkey-server) shift; set -- redis-server "$@" ;;
esac
if [ "$1" != redis-server ]; then
  exec "$@"
fi
shift

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  config=$1
  shift
  exec redis-server "$config" --bind '* -::*' --protected-mode no --dir /data --daemonize no "$@"
fi
exec redis-server --bind '* -::*' --protected-mode no --dir /data --daemonize no "$@"
