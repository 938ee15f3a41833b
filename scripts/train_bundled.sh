#!/usr/bin/env bash
# Reproduce the bundled model resources/models/protonet-omniglot.pt and its recorded
# evaluations (32 minutes of training on the 2-core dev machine with one training thread):
#   scripts/train_bundled.sh DATA_ROOT [RUN_DIR]
set -euo pipefail
data=${1:?Omniglot data root (folder or zips)}; run=${2:-runs/protonet-omniglot}
nomgui-train meta-train --algo protonet --dataset omniglot --split seed \
  --way 20 --shot 1 --query 5 --batch 4 --steps 3000 --val-every 500 --val-episodes 200 \
  --threads 1 --out "$run" --data-root "$data"
cp "$run/best.pt" resources/models/protonet-omniglot.pt
for ws in "5 1" "5 5" "20 1" "20 5"; do
  set -- $ws
  nomgui-train evaluate --model resources/models/protonet-omniglot.pt --dataset omniglot \
    --split seed --way "$1" --shot "$2" --episodes 1000 --record --data-root "$data"
done
