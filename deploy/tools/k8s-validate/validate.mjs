// Validates rendered Kubernetes objects (a JSON array, as helm-render --json writes
// it) against the object schemas shipped in the kubernetes-models packages: the core
// API (kubernetes-models) and the CRDs the chart uses (KEDA, prometheus-operator).
// Usage: node validate.mjs OBJECTS.json...   Exit 1 on the first file with errors.
import { readFileSync } from "node:fs";

// apiVersion group -> the package that holds its models.
const PACKAGES = {
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function modelFor(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const pkg = PACKAGES[group] ?? "kubernetes-models";
  const module = await import(`${pkg}/${apiVersion}/${kind}`);
  return module[kind];
}

let failures = 0;
for (const file of process.argv.slice(2)) {
  const objects = JSON.parse(readFileSync(file, "utf8"));
  if (!Array.isArray(objects) || objects.length === 0) {
    console.error(`${file}: no objects`);
    failures++;
    continue;
  }
  for (const object of objects) {
    const where = `${file}: ${object?.kind ?? "?"} ${object?.metadata?.name ?? "?"}`;
    if (!object?.apiVersion || !object?.kind || !object?.metadata?.name) {
      console.error(`${where}: missing apiVersion, kind or metadata.name`);
      failures++;
      continue;
    }
    let Model;
    try {
      Model = await modelFor(object.apiVersion, object.kind);
    } catch (e) {
      console.error(`${where}: no schema for ${object.apiVersion} ${object.kind}`);
      failures++;
      continue;
    }
    try {
      new Model(object).validate();
      console.log(`ok   ${where} (${object.apiVersion})`);
    } catch (e) {
      console.error(`FAIL ${where}: ${e.message}`);
      failures++;
    }
  }
}
if (failures > 0) {
  console.error(`${failures} object(s) failed validation`);
  process.exit(1);
}
