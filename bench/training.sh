#!/usr/bin/env bash
# Training side by side (part of `make bench`, not CI): cnnc's generated trainer and PyTorch
# eager (CPU, same thread count) on the same networks and recipe, in one run on one machine.
#   - training images/s at batch 64 on CIFAR-shaped random data: ResNet-20, VGG-11-BN
#   - LeNet-5 on Fashion-MNIST, the PyTorch recipe (batch 64, lr 0.01, momentum 0.9, wd 5e-4):
#     test accuracy per epoch and seconds per epoch (EPOCHS, default 3)
# PyTorch comes from TORCH_VENV when set (a ready venv with torch and numpy), else from the
# benchmark venv (bench/venv.sh: .venv-bench, the CPU build of torch).
set -euo pipefail
cd "$(dirname "$0")/.."
CNNC=${CNNC:-.build/release/cnnc}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-3}
STEPS=${STEPS:-10}
if [ -n "${TORCH_VENV:-}" ]; then
    PY="$TORCH_VENV/bin/python"
else
    source bench/venv.sh
    PY="$BENCH_PY"
fi
FASHION=/usr/share/datasets/fashion-mnist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p'), $THREADS threads"

# Random CIFAR-shaped data: (STEPS + 1) batches of 64.
"$PY" - "$work" "$STEPS" <<'PY'
import sys, numpy as np
d, steps = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
n = 64 * (steps + 1)
np.save(f"{d}/x.npy", rng.random((n, 3, 32, 32), dtype=np.float32))
np.save(f"{d}/y.npy", rng.integers(0, 10, n).astype(np.int64))
PY
# Training memory at batch 64: the whole trainer process's peak resident set (weights, data,
# code included) against PyTorch's resident-set growth over its steps (printed by
# pytorch_reference.py throughput as peak_rss_growth_mb; its weights predate the growth).
"$PY" - "$work" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(2)
np.save(f"{sys.argv[1]}/lx.npy", rng.random((256, 1, 28, 28), dtype=np.float32))
np.save(f"{sys.argv[1]}/ly.npy", rng.integers(0, 10, 256).astype(np.int64))
PY
for model in lenet resnet20 vgg11_bn; do
    x=x; y=y; [ "$model" = lenet ] && { x=lx; y=ly; }
    "$CNNC" train Examples/$model/model.net --data "$work/$x.npy" --labels "$work/$y.npy" --batch 64 \
        --emit-trainer "$work/$model-trainer" >/dev/null
    kb=$(OMP_NUM_THREADS=$THREADS /usr/bin/time -f "%M" "$work/$model-trainer" format=npy data="$work/$x.npy" labels="$work/$y.npy" \
        epochs=1 steps=4 2>&1 >/dev/null | tail -1)
    echo "cnnc $model batch 64: peak RSS $((kb / 1000)) MB (the whole trainer process)"
done
"$PY" bench/pytorch_reference.py throughput lenet --batch 64 --steps 4 --threads "$THREADS" | sed 's/train_images_per_s.*peak/peak/'

for model in resnet20 vgg11_bn; do
    line=$(OMP_NUM_THREADS=$THREADS "$CNNC" train Examples/$model/model.net --data "$work/x.npy" --labels "$work/y.npy" \
        --test-data "$work/x.npy" --test-labels "$work/y.npy" --batch 64 --epochs 1 --lr 0.01 --no-shuffle \
        --threads "$THREADS" 2>&1 | tr '\r' '\n' | grep -E "^epoch 1/1:" || true)
    echo "cnnc $model batch 64: ${line:-no result}"
    "$PY" bench/pytorch_reference.py throughput $model --batch 64 --steps "$STEPS" --threads "$THREADS"
done

if [ -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
    OMP_NUM_THREADS=$THREADS "$CNNC" train Examples/lenet/model.net --data "$FASHION" --epochs "$EPOCHS" --batch 64 \
        --lr 0.01 --momentum 0.9 --weight-decay 5e-4 --threads "$THREADS" 2>&1 | tr '\r' '\n' | grep -E "^epoch [0-9]+/[0-9]+:" \
        | sed 's/^/cnnc lenet /'
    "$PY" bench/pytorch_reference.py lenet --data "$FASHION" --epochs "$EPOCHS" --threads "$THREADS"
fi
