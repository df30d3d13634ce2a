#!/usr/bin/env bash
# `make gpu-check`: everything that needs a GPU, in one command. Builds with CUDA (build-gpu/), runs the
# CUDA tests (none may skip: a skip on a GPU machine means the device was not usable), the MoE bench on
# the device against cuBLAS GEMMs of the same FLOPs, and a short Fashion-MNIST run with device=cuda;
# then prints one summary. Without a GPU it stops at once and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${GPU_BUILD_DIR:-build-gpu}
JOBS=${JOBS:-$(nproc)}
LOGS=$BUILD/gpu_check
summary=()
failed=0
record() {  # record STEP RESULT DETAIL
  summary+=("$(printf '%-14s %-6s %s' "$1" "$2" "$3")")
  [ "$2" = "ok" ] || failed=1
}

gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
if [ "${gpus:-0}" -eq 0 ]; then
  echo "gpu-check: FAILED: no GPU is present on this machine (nvidia-smi $(command -v nvidia-smi >/dev/null && echo 'lists no device' || echo 'is not installed'))." >&2
  echo "gpu-check: nothing was built or run; run \`make gpu-check\` on a machine with an NVIDIA GPU, its driver and the CUDA toolkit." >&2
  exit 1
fi
NVCC=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ ! -x "$NVCC" ]; then
  echo "gpu-check: FAILED: a GPU is present but nvcc was not found (set CUDACXX or put nvcc on PATH)." >&2
  exit 1
fi
mkdir -p "$LOGS"
echo "gpu-check: $(nvidia-smi -L | head -n 1); nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"

# 1. The CUDA build.
if cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOELAB_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" >"$LOGS/configure.log" 2>&1 &&
   cmake --build "$BUILD" -j "$JOBS" >"$LOGS/build.log" 2>&1; then
  record build ok "$BUILD (log: $LOGS/build.log)"
else
  record build FAIL "see $LOGS/configure.log and $LOGS/build.log"
  printf '\ngpu-check summary\n'; printf '  %s\n' "${summary[@]}"; exit 1
fi

# 2. The CUDA tests: the smoke suite and the cuda rows of the backend, gradient and tensor tests.
tests_ok=1; detail=""
for spec in "test_cuda_smoke:*" "test_backend_ops:*cuda*:*Cuda*" "test_grad:*cuda*:*Cuda*" "test_tensor:*Cuda*:*cuda*"; do
  bin=${spec%%:*}; filter=${spec#*:}
  log="$LOGS/$bin.log"
  "./$BUILD/tests/$bin" --gtest_filter="$filter" >"$log" 2>&1; rc=$?
  passed=$(grep -c '^\[       OK \]' "$log"); skipped=$(grep -c '^\[  SKIPPED \]' "$log"); fails=$(grep -c '^\[  FAILED  \]' "$log")
  detail+="$bin $passed passed/$skipped skipped; "
  if [ $rc -ne 0 ] || [ "$skipped" -gt 0 ] || [ "$passed" -eq 0 ]; then tests_ok=0; detail+="(see $log) "; fi
done
[ $tests_ok = 1 ] && record "cuda tests" ok "$detail" || record "cuda tests" FAIL "$detail"

# 3. The MoE layer on the device against dense cuBLAS GEMMs of the same active FLOPs.
if "./$BUILD/moelab" bench moe --device cuda --repeats 5 >"$LOGS/bench_moe.jsonl" 2>"$LOGS/bench_moe.err"; then
  record "bench moe" ok "$(sed -n 's/.*"tokens": \([0-9]*\).*"experts": \([0-9]*\).*"fwd_bwd_ms": \([0-9.]*\).*"ratio": \([0-9.]*\),.*/T=\1 E=\2 fwd+bwd \3 ms ratio \4;/p' "$LOGS/bench_moe.jsonl" | tr '\n' ' ')"
else
  record "bench moe" FAIL "$(tail -n 1 "$LOGS/bench_moe.err")"
fi

# 4. A short Fashion-MNIST ViT-MoE run on the device.
run_dir="$BUILD/gpu_check_vision"
rm -rf "$run_dir"
if "./$BUILD/moelab" run configs/vit_fmnist_moe.toml device=cuda train.epochs=0 train.steps=300 train.eval_every=0 \
     --run-dir "$run_dir" --progress none --no-report >"$LOGS/vision.log" 2>&1; then
  record "vision run" ok "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("status", s["status"], "steps", s["steps"], "final train loss", round(s["final_train_loss"], 4), "wall", round(s["wall_time_s"], 1), "s")' "$run_dir/summary.json" 2>/dev/null || echo "see $run_dir")"
else
  record "vision run" FAIL "$(tail -n 1 "$LOGS/vision.log")"
fi

printf '\ngpu-check summary (logs in %s)\n' "$LOGS"
printf '  %s\n' "${summary[@]}"
exit $failed
