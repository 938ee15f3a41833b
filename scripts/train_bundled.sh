#!/usr/bin/env bash
# Reproduce a bundled Omniglot model and its recorded evaluations (1,000 seeded test
# episodes each of 5-way 1/5-shot and 20-way 1/5-shot; transfer also the 423-way
# all-classes protocol on the seed split):
#   scripts/train_bundled.sh DATA_ROOT protonet|maml|fomaml|protomaml|transfer [seed|lake]
# seed-split models go to resources/models/NAME-omniglot.pt, lake-split ones to
# resources/models/lake/NAME-omniglot-lake.pt; runs to runs/NAME-SPLIT.
#
# These are the exact commands that made the shipped files. They ran on one H100, all ten
# side by side (scripts/train_side_by_side.py with scripts/omniglot_gpu.plan chose the
# first --steps of each); some seed runs were then continued with --resume and a larger
# --steps, which restarts the cosine schedule from the point it reaches at the old step
# (a warm restart). best.pt is the step with the best validation score; GPU kernels are not
# bit-for-bit deterministic, so a rerun lands near, not exactly on, the shipped numbers.
# On a CPU the same commands work with --threads N, in hours instead of minutes; Ctrl-C
# checkpoints, and the same command with --resume continues.
set -euo pipefail
data=${1:?Omniglot data root (folder or zips)}; model=${2:?learner name}; split=${3:-seed}
run=runs/$model-$split
common=(--dataset omniglot --split "$split" --data-root "$data" --out "$run")
episodic=(--way 5 --shot 1 --query 15 --rotations)
train() {  # --steps of each sitting, then the arguments of the run
  local first=$1 sittings=$2; shift 2
  nomgui-train "$@" "${common[@]}" --steps "$first" --val-every "$VAL" --checkpoint-every "$VAL"
  for steps in $sittings; do
    nomgui-train "$@" "${common[@]}" --steps "$steps" --resume
  done
}
case "$model:$split" in
  protonet:seed) VAL=500 train 5500 "11000" meta-train --algo protonet --way 60 --shot 1 \
                   --query 5 --batch 2 --rotations ;;
  protonet:lake) VAL=500 train 5500 "" meta-train --algo protonet --way 60 --shot 1 \
                   --query 5 --batch 2 --rotations ;;
  maml:seed) VAL=100 train 1800 "4200" meta-train --algo maml "${episodic[@]}" --batch 32 \
               --inner-steps 1 --inner-lr 0.4 ;;
  maml:lake) VAL=100 train 1800 "" meta-train --algo maml "${episodic[@]}" --batch 32 \
               --inner-steps 1 --inner-lr 0.4 ;;
  fomaml:seed) VAL=100 train 1500 "" meta-train --algo maml --first-order "${episodic[@]}" \
                 --batch 32 --inner-steps 5 --inner-lr 0.1 ;;
  fomaml:lake) VAL=100 train 1600 "" meta-train --algo maml --first-order "${episodic[@]}" \
                 --batch 32 --inner-steps 5 --inner-lr 0.1 ;;
  protomaml:seed) VAL=200 train 2500 "5000" meta-train --algo protomaml "${episodic[@]}" \
                    --batch 16 ;;
  protomaml:lake) VAL=200 train 2500 "" meta-train --algo protomaml "${episodic[@]}" \
                    --batch 16 ;;
  transfer:*) VAL=900 train 9200 "" pretrain --batch 256 --affine 1 ;;
  *) echo "unknown model or split: $model $split" >&2; exit 2 ;;
esac
if [ "$split" = seed ]; then target=resources/models/$model-omniglot.pt
else target=resources/models/lake/$model-omniglot-lake.pt; fi
mkdir -p "$(dirname "$target")"
cp "$run/best.pt" "$target"
for ws in "5 1" "5 5" "20 1" "20 5"; do
  set -- $ws
  nomgui-train evaluate --model "$target" --dataset omniglot --split "$split" \
    --way "$1" --shot "$2" --episodes 1000 --record --data-root "$data"
done
if [ "$model" = transfer ]; then
  nomgui-train evaluate --model "$target" --dataset omniglot --split "$split" \
    --all-classes --record --data-root "$data"
fi
