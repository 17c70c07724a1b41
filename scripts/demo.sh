#!/usr/bin/env bash
# The whole flow on the bundled example, in a fresh folder: package, serve one prediction, predict a batch, and more as it lands.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mlops() { node "$root/bin/run.js" "$@"; }
step() { current="$*"; printf '\n\033[1m== %s\033[0m\n' "$*"; }
# A failed step: mlops has said which gate failed and why on the line above; say where the demo stopped.
trap 'echo "demo stopped at: ${current:-setup}" >&2' ERR

work="${MLOPS_DEMO_DIR:-${TMPDIR:-/tmp}/mlops-demo}"
# A gateway left running by an earlier demo is stopped before its folder goes.
[ -d "$work/credit-risk/.mlops/deploy" ] && (cd "$work/credit-risk" && mlops down --yes >/dev/null 2>&1 || true)
rm -rf "$work" && mkdir -p "$work"
cp -R "$root/examples/credit-risk" "$work/credit-risk"
cd "$work/credit-risk"
echo "demo project: $work/credit-risk"

step "mlops package (validate config, run golden cases, profile reference data, store the artifact)"
mlops package

step "mlops artifacts list"
mlops artifacts list

step "mlops serve, then one prediction over HTTP"
port_file="$work/serve.json"
# node itself in the background (not the mlops function, whose subshell would get the TERM and orphan the server).
node "$root/bin/run.js" serve --port 0 --json >"$port_file" 2>"$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q '"url"' "$port_file" 2>/dev/null && break; sleep 0.1; done
url=$(node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").split("\n").find(Boolean);console.log(JSON.parse(l).url)' "$port_file")
echo "POST $url/v1/predict"
curl -s -XPOST "$url/v1/predict" -H 'content-type: application/json' \
  -d '{"instances":[{"age":41,"income":52000,"debt_ratio":0.31,"credit_history_months":84,"region":"north","employment":"employed","has_prior_default":false}]}'
echo
kill -TERM $server && wait $server || true
trap - EXIT

step "mlops predict (batch: data/applicants.csv -> scores.jsonl)"
mlops predict --input data/applicants.csv --output scores.jsonl
head -n 3 scores.jsonl

step "mlops test (load, latency, robustness and regression gates from mlops.yaml's checks section)"
mlops test --junit reports/junit.xml --html reports/test.html

step "mlops build (an OCI image of the artifact, when docker, podman or buildah can reach a base image)"
if mlops build >"$work/build.log" 2>&1; then
  grep -v '^STEP\|^-->' "$work/build.log" | tail -n 3
else
  echo "no image built ($(grep -m1 '^Error' "$work/build.log" | cut -c8-160)…)."
  echo "To enable it: install docker, podman or buildah with access to node:20-bookworm-slim (or pass --base-image), then run: mlops build"
fi

step "mlops monitor (data/current-shifted.csv against the training baseline in the artifact)"
set +e
mlops monitor --input data/current-shifted.csv --html drift.html
status=$?
set -e
[ $status = 1 ] && echo "exit 1: drift past the thresholds (as expected for the shifted data); report: $PWD/drift.html"

step "a second version: retrain with another seed, package it as 1.1.0"
(cd "$root" && node --import tsx scripts/train-example.ts --seed 7 --out "$work/v2" >/dev/null)
cp "$work/v2/model/model.onnx" model/model.onnx
cp "$work/v2/golden.jsonl" golden.jsonl
cp "$work/v2/mlops.yaml" mlops.yaml
mlops package --bump minor

port="${MLOPS_DEMO_PORT:-8080}"
step "mlops deploy 1.0.0 --full: the local gateway on :$port"
mlops deploy 1.0.0 --full --port "$port"

step "mlops deploy 1.1.0 --shadow --auto --wait, under generated traffic: shadow -> canary 10% -> 50% -> full"
node "$root/scripts/traffic.mjs" "http://127.0.0.1:$port" golden.jsonl 120 >"$work/traffic.log" &
traffic=$!
trap 'kill $traffic 2>/dev/null || true' EXIT
mlops deploy 1.1.0 --shadow --auto --wait
kill -TERM $traffic && wait $traffic || true
trap - EXIT
cat "$work/traffic.log"

step "mlops history"
mlops history

step "done"
echo "The gateway serves credit-risk 1.1.0 at http://127.0.0.1:$port/v1/predict (and /v2/models/credit-risk/infer)."
echo "Watch it:  node $root/bin/run.js status --watch --dir $PWD"
echo "Stop it:   node $root/bin/run.js down --yes --dir $PWD"
