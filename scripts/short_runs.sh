#!/usr/bin/env bash
# One short real CPU run per learner on Omniglot (seed split), then the standard evaluation:
# 1,000 seeded 5-way 1-shot test episodes, mean +- 95% CI. A smoke-level check that every
# learner trains, not the bundled models (see README for those).
#   scripts/short_runs.sh DATA_ROOT OUT_DIR
set -euo pipefail
data=${1:?data root}; out=${2:?output folder}
common=(--dataset omniglot --split seed --data-root "$data")
run() {  # name, then meta-train/pretrain arguments
  local name=$1; shift
  nomgui-train "$@" "${common[@]}" --out "$out/$name" --val-every 100 \
    --json-progress > "$out/$name.log"
  nomgui-train evaluate --model "$out/$name/best.pt" "${common[@]}" --way 5 --shot 1 \
    --episodes 1000 --json --record | tee -a "$out/results.jsonl"
}
mkdir -p "$out"
episodic=(--steps 300 --batch 4 --val-episodes 100)
run protonet   meta-train --algo protonet  "${episodic[@]}"
run maml       meta-train --algo maml      "${episodic[@]}"
run fomaml     meta-train --algo maml      "${episodic[@]}" --first-order
run protomaml  meta-train --algo protomaml "${episodic[@]}"
run transfer   pretrain   --steps 1000 --batch 128
