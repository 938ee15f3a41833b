#!/usr/bin/env bash
# Reproduce a bundled Omniglot model in resources/models/ and its recorded evaluations
# (1,000 seeded test episodes each of 5-way 1/5-shot and 20-way 1/5-shot, seed split):
#   scripts/train_bundled.sh DATA_ROOT protonet|protomaml [RUN_DIR]
# Times on the 2-core dev machine with one training thread while the other core did other
# work: protonet 32 minutes; protomaml 5,000 steps in about 100 minutes. A run that is
# interrupted continues with the same command plus --resume (see README).
set -euo pipefail
data=${1:?Omniglot data root (folder or zips)}; model=${2:?protonet or protomaml}
run=${3:-runs/$model-omniglot}
case "$model" in
  protonet)
    nomgui-train meta-train --algo protonet --dataset omniglot --split seed \
      --way 20 --shot 1 --query 5 --batch 4 --steps 3000 --val-every 500 --val-episodes 200 \
      --threads 1 --out "$run" --data-root "$data" ;;
  protomaml)
    nomgui-train meta-train --algo protomaml --dataset omniglot --split seed \
      --way 5 --shot 1 --query 15 --batch 8 --steps 5000 --val-every 500 --val-episodes 200 \
      --checkpoint-every 100 --threads 1 --out "$run" --data-root "$data" ;;
  *) echo "unknown model $model" >&2; exit 2 ;;
esac
cp "$run/best.pt" "resources/models/$model-omniglot.pt"
for ws in "5 1" "5 5" "20 1" "20 5"; do
  set -- $ws
  nomgui-train evaluate --model "resources/models/$model-omniglot.pt" --dataset omniglot \
    --split seed --way "$1" --shot "$2" --episodes 1000 --record --data-root "$data"
done
