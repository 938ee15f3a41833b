#!/bin/sh
# Deliberate breaks of the learners, each loaded as a pytest plugin that patches one method
# (no source file is touched); every line must report failures. Run from the repository root:
#   sh tests/mutations/run.sh
run() { echo "== $1 (must fail): $2"; PYTHONPATH=tests/mutations .venv/bin/python -m pytest \
    tests/unit/test_learners.py -q -p "$1" -k "$2" 2>&1 | grep -E "passed|failed|FAILED"; }
run break_second_order "reference and maml-second"
run break_detach_protos "reference and protomaml or prototypes"
run break_label_order "permutation"
run break_transductive "other_queries"
run break_protonet_order "permutation and protonet"
