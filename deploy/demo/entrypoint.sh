#!/bin/sh
# Runs `agentrel demo` until the container is stopped (SIGTERM ends it cleanly). Extra
# arguments (e.g. --seed N) are passed through; AGENTREL_SCENARIO and AGENTREL_RATE pick the
# load.
set -eu
exec agentrel demo \
  --scenario "${AGENTREL_SCENARIO:-degraded}" \
  --rate "${AGENTREL_RATE:-5}" \
  --host 0.0.0.0 --port 9464 --plain \
  "$@"
