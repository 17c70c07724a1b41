#!/usr/bin/env bash
# The whole flow on the bundled example, in a fresh folder: package, serve one prediction, predict a batch, and more as it lands.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mlops() { node "$root/bin/run.js" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

work="${MLOPS_DEMO_DIR:-${TMPDIR:-/tmp}/mlops-demo}"
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
mlops serve --port 0 --json >"$port_file" 2>"$work/serve.log" &
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

step "mlops monitor (data/current-shifted.csv against the training baseline in the artifact)"
set +e
mlops monitor --input data/current-shifted.csv --html drift.html
status=$?
set -e
[ $status = 1 ] && echo "exit 1: drift past the thresholds (as expected for the shifted data); report: $PWD/drift.html"
