#!/usr/bin/env bash
# Collect every pod's JSON report of a uring-load Indexed Job and merge them.
#
# Usage: deploy/k8s/collect.sh [JOB] [DIR]   (default JOB uring-load, DIR ./JOB-reports)
# Waits (at most 1 h) for the job to finish, writes DIR/<pod>.json, then prints the
# merged text report; `uring-load merge DIR/*.json` gives the merged JSON. merge refuses
# reports of another run, a shard twice, and names missing shards.
set -euo pipefail
job=${1:-uring-load}
dir=${2:-./$job-reports}
mkdir -p "$dir"
kubectl wait --for=condition=complete --timeout=1h "job/$job" ||
  echo "collect: job/$job did not complete; merging what there is" >&2
for pod in $(kubectl get pods -l "job-name=$job" -o name); do
  kubectl logs "$pod" >"$dir/${pod#pod/}.json"
done
uring-load merge --text "$dir"/*.json
