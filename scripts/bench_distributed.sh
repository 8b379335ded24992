#!/usr/bin/env bash
# Data-parallel throughput of the mlp case: 1 and 2 processes of one thread each (mpirun), with
# DistributedDataParallel's default 25 MB bucket (the whole 1 MB model in one bucket, so nothing
# can overlap) and with 0.25 MB buckets (the all-reduce of the last layers' gradients starts while
# the backward computes the first layers'), and with SyncBatchNorm.
# Usage: bash scripts/bench_distributed.sh [--steps N]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
bash "$root/scripts/deps.sh" libbenchmark-dev
cmake --preset bench -S "$root" >/dev/null
cmake --build "$root/build/bench" -j "$(nproc)" --target ddp_bench >/dev/null
bin="$root/build/bench/bench/ddp_bench"
echo "| processes | bucket (count) | SyncBatchNorm | step ms | compute ms (no_sync) | samples/s | all-reduce alone ms | not hidden ms | overlapped | DDP's wait ms |"
echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
mpirun -np 1 "$bin" "$@"
for args in "--bucket-mb 25" "--bucket-mb 0.25" "--bucket-mb 0.25 --sync-bn"; do
  # shellcheck disable=SC2086
  mpirun -np 2 "$bin" $args "$@"
done
