#!/usr/bin/env bash
# The Helm chart, checked without helm: build deploy/tools/helm-render (Debian's Go and
# sprig, GOPATH mode, no module downloads), render the chart for the default values and
# variants, validate every object against the Kubernetes/KEDA/prometheus-operator
# schemas (deploy/tools/k8s-validate, npm kubernetes-models), and yamllint the files
# and the output. Usage: check_helm_chart.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1
work=$2
chart=$src/helm/shrink
mkdir -p "$work"

# Build the renderer offline: only the Go packages Debian installed under /usr/share/gocode.
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off GOCACHE="$work/go-cache" \
  bash -c "cd \"$src/deploy/tools/helm-render\" && go build -o \"$work/helm-render\" ."

validator=$src/deploy/tools/k8s-validate
if [ ! -d "$validator/node_modules/kubernetes-models" ]; then
  echo "missing $validator/node_modules: run scripts/install-deps.sh (npm ci there)" >&2
  exit 1
fi

# The chart's dashboards are the ones the PromQL test checks.
for f in "$src"/deploy/grafana/*.json; do
  cmp "$f" "$chart/dashboards/$(basename "$f")" || { echo "helm/shrink/dashboards is out of date: cp deploy/grafana/*.json helm/shrink/dashboards/" >&2; exit 1; }
done
python3 "$src/tests/deploy/check_values_comments.py" "$chart/values.yaml"
yamllint -s -c "$src/deploy/tools/yamllint.yaml" "$chart/values.yaml" "$chart/Chart.yaml" "$src"/deploy/prometheus/*.yml

# render NAME EXPECTED_KINDS [helm-render flags...]: renders, validates, lints, and checks the kinds.
render() {
  local name=$1 kinds=$2
  shift 2
  echo "== variant $name"
  "$work/helm-render" --name shrink --namespace ml --json "$work/$name.json" --notes "$work/$name.notes" "$@" "$chart" > "$work/$name.yaml"
  node "$validator/validate.mjs" "$work/$name.json"
  yamllint -s -c "$src/deploy/tools/yamllint.yaml" "$work/$name.yaml"
  local got
  got=$(node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(o.map(x=>x.kind).sort().join(","))' "$work/$name.json")
  if [ "$got" != "$kinds" ]; then
    echo "variant $name: kinds $got, expected $kinds" >&2
    exit 1
  fi
  grep -q "shrink submit job.yaml" "$work/$name.notes"
}

# jq-free field checks on the JSON output.
field() { node -e "const o=JSON.parse(require('fs').readFileSync(process.argv[1]));const f=$2;console.log(JSON.stringify(f(o)))" "$work/$1.json"; }
expect() { [ "$1" = "$2" ] || { echo "expected $2, got $1 ($3)" >&2; exit 1; }; }

render default ConfigMap,Deployment,Service,Service,Service,ServiceAccount,StatefulSet
worker='(o=>o.find(x=>x.kind==="Deployment"&&x.metadata.name==="shrink-worker"))'
expect "$(field default "o=>($worker(o)).spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']")" 1 "GPU limit"
expect "$(field default "o=>($worker(o)).spec.template.spec.tolerations[0].key")" '"nvidia.com/gpu"' "GPU toleration"
expect "$(field default "o=>($worker(o)).spec.replicas")" 2 "worker replicas"
expect "$(field default "o=>o.find(x=>x.kind==='StatefulSet').spec.volumeClaimTemplates[0].spec.resources.requests.storage")" '"20Gi"' "state PVC"
expect "$(field default "o=>o.find(x=>x.kind==='StatefulSet').spec.template.spec.containers[0].readinessProbe.grpc.port")" 50051 "gRPC probe"
expect "$(field default "o=>o.find(x=>x.kind==='ConfigMap').metadata.labels.grafana_dashboard")" '"1"' "dashboard label"
expect "$(field default "o=>Object.keys(o.find(x=>x.kind==='ConfigMap').data).sort().join(',')")" '"shrink-job.json,shrink-overview.json"' "dashboards"

render cpu ConfigMap,Deployment,Service,Service,Service,ServiceAccount,StatefulSet --set worker.gpu.enabled=false
expect "$(field cpu "o=>($worker(o)).spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'] ?? 'none'")" '"none"' "no GPU"
expect "$(field cpu "o=>($worker(o)).spec.template.spec.containers[0].image")" '"ghcr.io/example/shrink/worker-cpu:0.1.0"' "CPU image"
expect "$(field cpu "o=>($worker(o)).spec.template.spec.nodeSelector ?? 'none'")" '"none"' "no GPU node selector"

render autoscaling ConfigMap,Deployment,ScaledObject,Service,Service,Service,ServiceAccount,ServiceMonitor,ServiceMonitor,StatefulSet \
  --set autoscaling.enabled=true --set serviceMonitor.enabled=true --set autoscaling.maxReplicas=4
expect "$(field autoscaling "o=>($worker(o)).spec.replicas ?? 'unset'")" '"unset"' "KEDA owns replicas"
expect "$(field autoscaling "o=>o.find(x=>x.kind==='ScaledObject').spec.maxReplicaCount")" 4 "max replicas"

render minimal ConfigMap,Deployment,Service,Service,Service,StatefulSet \
  --set serviceAccount.create=false --set worker.gpu.enabled=false --set coordinator.persistence.storageClass=fast

# TLS and tokens are refused until the binaries accept the flags.
for variant in tls.enabled auth.enabled; do
  if "$work/helm-render" --set "$variant=true" "$chart" > /dev/null 2> "$work/refused.txt"; then
    echo "$variant=true rendered; it must be refused until the binaries support it" >&2
    exit 1
  fi
  grep -q "$variant" "$work/refused.txt"
  echo "== variant $variant=true refused: $(cat "$work/refused.txt")"
done
echo "helm chart checks: ok"
