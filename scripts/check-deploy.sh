#!/usr/bin/env bash
# check-deploy.sh: checks deploy/prometheus with promtool: the alert rules,
# their unit tests and the scrape config. Installs promtool (Debian package
# prometheus) with apt-get when it is missing and we are root.
# (TestDeployFilesUseRegisteredMetrics, in make test, checks that the
# dashboard and the rules use only metrics the service registers.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "check-deploy: installing promtool (apt-get install prometheus)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >&2
    # The package may start a Prometheus daemon; the checks do not use it.
    (service prometheus stop || true) >/dev/null 2>&1
  else
    echo "check-deploy: promtool is missing; install it with: sudo apt-get install -y prometheus" >&2
    exit 1
  fi
fi

promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
promtool check config deploy/prometheus/prometheus.yml
