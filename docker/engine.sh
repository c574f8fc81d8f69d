#!/usr/bin/env bash
# Make sure a Docker engine answers. Where none runs and this is a Debian machine run as root
# (as these build machines are), install Debian's docker.io (and debootstrap, for the base image)
# and start dockerd in the background (its log: /var/log/lbpg-dockerd.log); otherwise say what
# is missing.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "engine: no Docker engine answers ('docker info' failed); start one (e.g. 'sudo systemctl start docker')" >&2
  exit 4
fi
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "engine: installing Debian's docker.io and debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
echo "engine: starting dockerd (log /var/log/lbpg-dockerd.log)"
setsid nohup dockerd >/var/log/lbpg-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "engine: dockerd did not answer within 60 s; see /var/log/lbpg-dockerd.log" >&2
exit 4
