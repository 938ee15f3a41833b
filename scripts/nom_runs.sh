#!/usr/bin/env bash
# Short runs of every learner on the real Nôm crops, a ProtoNet trained on the
# font-rendered set, and that ProtoNet fine-tuned on the crops (fonts first, then real
# print, with the bundled crop model's recipe), each evaluated on the crop test characters
# (all Hán-Nôm: seed; Nôm proper: nom-only), 1,000 episodes, 5 queries per class. Results
# go to OUT/results.jsonl.
#   scripts/nom_runs.sh NOM_DATA_ROOT OUT_DIR
set -euo pipefail
data=${1:?folder with nom_woodblock_crops.zip and nom_codepoints.tsv}; out=${2:?output folder}
crops=(--dataset nom --data-root "$data")
mkdir -p "$out"
evaluate() {  # model file
  for split in seed nom-only; do
    for ws in "5 1" "5 5" "20 1"; do
      set -- "$1" $ws
      nomgui-train evaluate --model "$1" "${crops[@]}" --split "$split" --way "$2" \
        --shot "$3" --query 5 --episodes 1000 --json | tee -a "$out/results.jsonl"
    done
  done
}
episodic=(--steps 300 --batch 4 --way 5 --shot 1 --query 5 --val-every 100 --val-episodes 100)
for algo in maml protomaml; do
  nomgui-train meta-train --algo "$algo" "${episodic[@]}" "${crops[@]}" --split seed \
    --out "$out/$algo" --json-progress > "$out/$algo.log"
  evaluate "$out/$algo/best.pt"
done
nomgui-train meta-train --algo maml --first-order "${episodic[@]}" "${crops[@]}" --split seed \
  --out "$out/fomaml" --json-progress > "$out/fomaml.log"
evaluate "$out/fomaml/best.pt"
nomgui-train pretrain --steps 1000 --batch 128 --val-every 250 "${crops[@]}" --split seed \
  --out "$out/transfer" --json-progress > "$out/transfer.log"
evaluate "$out/transfer/best.pt"
nomgui-train meta-train --algo protonet --steps 1500 --batch 4 --way 20 --shot 1 --query 5 \
  --val-every 500 --dataset nom-fonts --data-root "$data" --split seed \
  --out "$out/protonet-fonts" --json-progress > "$out/protonet-fonts.log"
evaluate "$out/protonet-fonts/best.pt"
nomgui-train meta-train --algo protonet --steps 1500 --batch 4 --way 20 --shot 1 --query 5 \
  --val-every 500 "${crops[@]}" --split seed --init-from "$out/protonet-fonts/best.pt" \
  --out "$out/protonet-fonts-crops" --json-progress > "$out/protonet-fonts-crops.log"
evaluate "$out/protonet-fonts-crops/best.pt"
