#!/usr/bin/env bash
# promtool on the shipped Prometheus files: config syntax, rule syntax, and the
# alert rules' unit tests. Usage: check_prometheus.sh SOURCE_DIR
set -euo pipefail
cd "$1/deploy/prometheus"
promtool check config prometheus.yml
promtool check rules shrink-alerts.yml
promtool test rules shrink-alerts_test.yml
echo "prometheus checks: ok"
