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
# Leases: the worker heartbeats well within the coordinator's lease.
arg() { echo "o=>{const a=($1).spec.template.spec.containers[0].args;return a[a.indexOf('$2')+1]}"; }
expect "$(field default "$(arg "o.find(x=>x.kind==='StatefulSet')" --lease-seconds)")" '"60"' "lease"
expect "$(field default "$(arg "o.find(x=>x.kind==='StatefulSet')" --max-task-seconds)")" '"21600"' "max task"
expect "$(field default "$(arg "$worker(o)" --heartbeat-seconds)")" '"10"' "heartbeat"
expect "$(field default "o=>o.find(x=>x.kind==='StatefulSet').spec.volumeClaimTemplates[0].spec.resources.requests.storage")" '"20Gi"' "state PVC"
expect "$(field default "o=>o.find(x=>x.kind==='StatefulSet').spec.template.spec.containers[0].readinessProbe.grpc.port")" 50051 "gRPC probe"
expect "$(field default "o=>o.find(x=>x.kind==='ConfigMap').metadata.labels.grafana_dashboard")" '"1"' "dashboard label"
expect "$(field default "o=>Object.keys(o.find(x=>x.kind==='ConfigMap').data).sort().join(',')")" '"shrink-job.json,shrink-overview.json"' "dashboards"

expect "$(field default "o=>($worker(o)).spec.template.spec.containers[0].args.includes('--runtimes')")" false "runtimes detected by default"

render cpu ConfigMap,Deployment,Service,Service,Service,ServiceAccount,StatefulSet --set worker.gpu.enabled=false \
  --set 'worker.runtimes=[libtorch, onnxruntime]'
expect "$(field cpu "$(arg "$worker(o)" --runtimes)")" '"libtorch,onnxruntime"' "worker runtimes"
expect "$(field cpu "o=>($worker(o)).spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'] ?? 'none'")" '"none"' "no GPU"
expect "$(field cpu "o=>($worker(o)).spec.template.spec.containers[0].image")" '"ghcr.io/example/shrink/worker-cpu:0.1.0"' "CPU image"
expect "$(field cpu "o=>($worker(o)).spec.template.spec.nodeSelector ?? 'none'")" '"none"' "no GPU node selector"

render autoscaling ConfigMap,Deployment,ScaledObject,Service,Service,Service,ServiceAccount,ServiceMonitor,ServiceMonitor,StatefulSet \
  --set autoscaling.enabled=true --set serviceMonitor.enabled=true --set autoscaling.maxReplicas=4
expect "$(field autoscaling "o=>($worker(o)).spec.replicas ?? 'unset'")" '"unset"' "KEDA owns replicas"
expect "$(field autoscaling "o=>o.find(x=>x.kind==='ScaledObject').spec.maxReplicaCount")" 4 "max replicas"

render minimal ConfigMap,Deployment,Service,Service,Service,StatefulSet \
  --set serviceAccount.create=false --set worker.gpu.enabled=false --set coordinator.persistence.storageClass=fast

# TLS with mutual worker certificates and tokens: flags, read-only Secret mounts, exec probes.
render secure ConfigMap,Deployment,Service,Service,Service,ServiceAccount,StatefulSet \
  --set tls.enabled=true --set tls.secretName=shrink-tls --set tls.workerSecretName=shrink-worker-tls \
  --set auth.enabled=true --set auth.secretName=shrink-tokens
coord='(o=>o.find(x=>x.kind==="StatefulSet").spec.template.spec)'
expect "$(field secure "o=>($coord(o)).containers[0].args.slice(10).join(' ')")" \
  '"--tls-cert /etc/shrink/tls/tls.crt --tls-key /etc/shrink/tls/tls.key --tls-client-ca /etc/shrink/worker-ca/ca.crt --tokens /etc/shrink/auth/tokens"' "coordinator TLS/token flags"
expect "$(field secure "o=>($coord(o)).containers[0].readinessProbe.exec.command.join(' ')")" \
  '"shrink health --coordinator 127.0.0.1:50051 --tls-ca /etc/shrink/tls/ca.crt"' "TLS exec probe"
expect "$(field secure "o=>($coord(o)).containers[0].livenessProbe.grpc ?? 'none'")" '"none"' "no plaintext gRPC probe"
expect "$(field secure "o=>($coord(o)).containers[0].volumeMounts.filter(m=>m.readOnly).map(m=>m.name+':'+m.mountPath).join(',')")" \
  '"tls:/etc/shrink/tls,worker-ca:/etc/shrink/worker-ca,tokens:/etc/shrink/auth"' "coordinator read-only mounts"
expect "$(field secure "o=>($coord(o)).volumes.filter(v=>v.secret).map(v=>v.secret.secretName+'/'+v.secret.items.map(i=>i.key).join('+')).join(',')")" \
  '"shrink-tls/tls.crt+tls.key+ca.crt,shrink-worker-tls/ca.crt,shrink-tokens/tokens"' "coordinator Secret keys"
expect "$(field secure "o=>($worker(o)).spec.template.spec.containers[0].args.slice(-6).join(' ')")" \
  '"--tls-ca /etc/shrink/tls/ca.crt --tls-cert /etc/shrink/worker-tls/tls.crt --tls-key /etc/shrink/worker-tls/tls.key"' "worker TLS flags"
expect "$(field secure "o=>($worker(o)).spec.template.spec.volumes.filter(v=>v.secret).map(v=>v.secret.secretName+'/'+v.secret.items.map(i=>i.key).join('+')).join(',')")" \
  '"shrink-tls/ca.crt,shrink-worker-tls/tls.crt+tls.key"' "worker Secret keys (no server key)"
grep -q SHRINK_TLS_CA "$work/secure.notes"
grep -q SHRINK_TOKEN "$work/secure.notes"

# TLS without worker certificates (tls.mutual=false): server TLS only, no tokens.
render tls-only ConfigMap,Deployment,Service,Service,Service,ServiceAccount,StatefulSet \
  --set tls.enabled=true --set tls.secretName=shrink-tls --set tls.mutual=false --set tls.probeHost=localhost
expect "$(field tls-only "o=>($coord(o)).containers[0].args.slice(10).join(' ')")" \
  '"--tls-cert /etc/shrink/tls/tls.crt --tls-key /etc/shrink/tls/tls.key"' "server TLS only"
expect "$(field tls-only "o=>($worker(o)).spec.template.spec.containers[0].args.slice(-2).join(' ')")" '"--tls-ca /etc/shrink/tls/ca.crt"' "worker CA only"
expect "$(field tls-only "o=>($coord(o)).containers[0].startupProbe.exec.command[3]")" '"localhost:50051"' "probe host"
if grep -q SHRINK_TOKEN "$work/tls-only.notes"; then echo "tls-only NOTES mention tokens" >&2; exit 1; fi

# refuse NAME MESSAGE [--set ...]: rendering must fail with MESSAGE in the error.
refuse() {
  local name=$1 message=$2
  shift 2
  if "$work/helm-render" "$@" "$chart" > /dev/null 2> "$work/$name.err"; then
    echo "variant $name rendered; it must be refused" >&2
    exit 1
  fi
  grep -qF "$message" "$work/$name.err" || { echo "variant $name: expected \"$message\" in: $(cat "$work/$name.err")" >&2; exit 1; }
  echo "== variant $name refused: $(cat "$work/$name.err")"
}
refuse auth-without-tls "auth.enabled needs tls.enabled" --set auth.enabled=true --set auth.secretName=shrink-tokens
refuse tls-without-secret "tls.secretName" --set tls.enabled=true
refuse mtls-without-worker-secret "tls.workerSecretName" --set tls.enabled=true --set tls.secretName=shrink-tls
refuse auth-without-secret "auth.secretName" --set tls.enabled=true --set tls.secretName=s --set tls.mutual=false --set auth.enabled=true
echo "helm chart checks: ok"
