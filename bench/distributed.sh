#!/usr/bin/env bash
# Data-parallel scaling on this machine (part of `make bench`, not CI): one process with all
# the cores as OpenMP threads against `--ranks N` processes with one thread each (N = cores),
# alternating, PASSES times; prints each run and the medians.
#   - LeNet-5 on Fashion-MNIST, one epoch of the PyTorch recipe: seconds and test accuracy
#   - ResNet-20 at global batch 64 on CIFAR-shaped random data: images/s over STEPS steps
set -euo pipefail
cd "$(dirname "$0")/.."
CNNC=${CNNC:-.build/release/cnnc}
PASSES=${PASSES:-3}
STEPS=${STEPS:-20}
CORES=$(nproc)
FASHION=/usr/share/datasets/fashion-mnist
command -v mpirun >/dev/null || { echo "distributed: Open MPI is not installed (scripts/install-deps.sh)"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p'), $CORES cores; 1 x $CORES threads vs $CORES ranks x 1 thread"

python3 - "$work" "$STEPS" <<'PY'
import struct, sys, random
d, steps = sys.argv[1], int(sys.argv[2])
n = 64 * steps
def npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload)
rng = random.Random(1)
npy(f"{d}/x.npy", "<f4", (n, 3, 32, 32), struct.pack(f"<{n * 3072}f", *(rng.random() for _ in range(n * 3072))))
npy(f"{d}/y.npy", "<i8", (n,), struct.pack(f"<{n}q", *(rng.randrange(10) for _ in range(n))))
PY

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
declare -A lenet_s lenet_acc resnet
for pass in $(seq "$PASSES"); do
    for mode in process ranks; do
        if [ "$mode" = process ]; then run=(--threads "$CORES"); else run=(--ranks "$CORES" --threads 1); fi
        if [ -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
            line=$("$CNNC" train Examples/lenet/model.net --data "$FASHION" --epochs 1 --batch 64 --lr 0.01 --momentum 0.9 \
                --weight-decay 5e-4 "${run[@]}" 2>&1 | tr '\r' '\n' | grep -E "^epoch 1/1:" || true)
            s=$(sed -n 's/.*, \([0-9.]*\) s (.*/\1/p' <<<"$line"); acc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' <<<"$line")
            echo "pass $pass $mode lenet epoch: ${s:-?} s, test accuracy ${acc:-?}%"
            lenet_s[$mode]+="$s "; lenet_acc[$mode]+="$acc "
        fi
        line=$("$CNNC" train Examples/resnet20/model.net --data "$work/x.npy" --labels "$work/y.npy" --batch 64 --epochs 1 \
            --lr 0.01 --no-shuffle "${run[@]}" 2>&1 | tr '\r' '\n' | grep -E "^epoch 1/1:" || true)
        ips=$(sed -n 's/.*(\([0-9.]*\) images\/s).*/\1/p' <<<"$line")
        echo "pass $pass $mode resnet20 batch 64: ${ips:-?} images/s"
        resnet[$mode]+="$ips "
    done
done
for mode in process ranks; do
    label=$([ "$mode" = process ] && echo "1 process x $CORES threads" || echo "$CORES ranks x 1 thread")
    if [ -n "${lenet_s[$mode]:-}" ]; then
        echo "median $label: lenet epoch $(tr ' ' '\n' <<<"${lenet_s[$mode]}" | grep . | median) s, accuracy $(tr ' ' '\n' <<<"${lenet_acc[$mode]}" | grep . | median)%"
    fi
    echo "median $label: resnet20 $(tr ' ' '\n' <<<"${resnet[$mode]}" | grep . | median) images/s"
done
