#!/usr/bin/env bash
# Explain a whole data set with cnnviz on Slurm: one array task per shard
# (`--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`), then one merge job
# that waits for the array. See docs/datasets.md. Adapt the #SBATCH lines,
# INPUTS, OUT and the explain flags.
#
#   sbatch docs/slurm.sh                       # submits the array (0-7)
#   sbatch --dependency=afterok:<array job id> --wrap "vizkit merge $OUT/all $OUT/shard-*"
#
# Resubmitting a failed task (sbatch --array=3 docs/slurm.sh) resumes its
# shard: finished images are skipped.
#SBATCH --job-name=cnnviz-explain
#SBATCH --array=0-7                 # N shards: task ids 0..N-1
#SBATCH --cpus-per-task=8
#SBATCH --mem=24G
#SBATCH --gres=gpu:1                # remove for CPU-only (and use GOMLX_BACKEND=go)
#SBATCH --time=12:00:00
#SBATCH --output=cnnviz-%A_%a.log
set -euo pipefail

INPUTS=${INPUTS:-/shared/datasets/imagenet-val}
OUT=${OUT:-/shared/out/cnnviz}
SHARDS=${SLURM_ARRAY_TASK_COUNT:?run me with sbatch --array}
export GOMLX_BACKEND=${GOMLX_BACKEND:-xla:cuda}
export GOMAXPROCS=${SLURM_CPUS_PER_TASK:-8}

vizkit explain \
  --model vgg11 --weights auto --offline \
  --image "$INPUTS" \
  --methods gradcam --metrics \
  --batch-size 64 \
  --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}" \
  --out "$OUT/shard-${SLURM_ARRAY_TASK_ID}"
