#!/usr/bin/env python3
"""PyTorch side of the training benchmarks (`make bench`): the same networks, recipe and data
as cnnc's examples, CPU, a fixed thread count (2 by default, like the machine).

  pytorch_reference.py lenet --data DIR --epochs 3      # Fashion-MNIST, the issue's recipe
  pytorch_reference.py throughput resnet20 --batch 64   # training images/s on CIFAR-shaped data

Prints one machine-readable line per result, starting with 'pytorch'.
"""
import argparse
import gzip
import os
import statistics
import threading
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(directory, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{directory}/{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{directory}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


class LeNet(nn.Module):  # Examples/lenet/model.net
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.f1 = nn.Linear(400, 120)
        self.f2 = nn.Linear(120, 84)
        self.logits = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.f1(x.flatten(1)))
        return self.logits(F.relu(self.f2(x)))


class Block(nn.Module):  # Examples/resnet20: basic block, projection shortcut when the shape changes
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(3):
                layers.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def vgg11_bn():  # Examples/vgg11_bn/model.net
    layers, cin = [], 3
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 10))


def sgd(model, args):
    return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)


def lenet(args):
    x, y = fashion(args.data, "train")
    tx, ty = fashion(args.data, "test")
    model, generator = LeNet(), torch.Generator().manual_seed(args.seed)
    opt = sgd(model, args)
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), args.batch):
            idx = order[i:i + args.batch]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            right = sum((model(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum().item() for i in range(0, len(tx), 1000))
        print(f"pytorch lenet epoch {epoch} test_accuracy {100.0 * right / len(tx):.2f} seconds {seconds:.2f}", flush=True)


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def throughput(args):
    model = {"resnet20": ResNet20, "vgg11_bn": vgg11_bn, "lenet": LeNet}[args.model]()
    opt = sgd(model, args)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, *((1, 28, 28) if args.model == "lenet" else (3, 32, 32)), generator=g)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    # training memory: the growth of the resident set over the steps, sampled every 0.5 ms
    # (the model, its weights and the batch are there before; the momenta come with the first step)
    base = resident_bytes()
    peak, sampling = [base], [True]

    def sample():
        while sampling[0]:
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(0.0005)
    sampler = threading.Thread(target=sample)
    sampler.start()
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    sampling[0] = False
    sampler.join()
    median = statistics.median(times)
    print(f"pytorch {args.model} batch {args.batch} train_images_per_s {args.batch / median:.1f} median_step_ms {1000 * median:.1f} "
          f"peak_rss_growth_mb {(peak[0] - base) / 1e6:.1f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["lenet", "throughput"])
    p.add_argument("model", nargs="?", default="resnet20")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lenet(args) if args.what == "lenet" else throughput(args)


if __name__ == "__main__":
    main()
