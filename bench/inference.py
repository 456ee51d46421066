#!/usr/bin/env python3
"""Inference side by side (`make bench-inference`, part of `make bench`, not CI): cnnc's
generated C and ONNX Runtime on the same ONNX files, the same input, the same thread count,
in one run on one machine.

Models: the examples exported by `cnnc export` (lenet, resnet20, vgg11_bn) and torchvision's
resnet18, mobilenet_v2 and densenet121 (weights=None, batch-norm statistics calibrated on
random data, exported by torch.onnx.export at opset 17 with a dynamic batch). Each at batch 1
and a large batch. Both sides: median of ITERATIONS timed runs after WARMUP untimed ones, the
two sides alternating PASSES times per row and each keeping its best median (shared, noisy
machines); ONNX Runtime with intra_op_num_threads=THREADS, inter_op 1, sequential execution and every
graph optimization; cnnc through `cnnc bench --threads THREADS --json` (built with -O3,
the ONNX file's weights). Correctness: `cnnc run` on the benchmark input against ONNX
Runtime's output, max |cnnc - ORT| / max |ORT| over the first output.

Prints one table (the CPU, the date and the load average on top) and writes bench/results/latest.json. A model
cnnc cannot build or run gets a row "cnnc failed: <first line of the error>"; the run goes on.

  bench/inference.sh                                  # everything
  bench/inference.sh --models resnet20 --batches 1    # one row
  BENCH_MODELS=lenet,resnet18 BENCH_BATCHES=large bench/inference.sh
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import types

import numpy as np
import onnxruntime as ort

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Model:
    """One benchmarked network: where its ONNX file comes from, its input and its large batch."""

    def __init__(self, name, kind, shape, large_batch):
        self.name, self.kind, self.shape, self.large_batch = name, kind, shape, large_batch


MODELS = [
    Model("lenet", "example", (1, 28, 28), 256),
    Model("resnet20", "example", (3, 32, 32), 32),
    Model("vgg11_bn", "example", (3, 32, 32), 32),
    Model("resnet18", "torchvision", (3, 224, 224), 32),
    Model("mobilenet_v2", "torchvision", (3, 224, 224), 16),
    Model("densenet121", "torchvision", (3, 224, 224), 16),
]


def parse_args():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cnnc", default=env("CNNC", ".build/release/cnnc"), help="the cnnc binary")
    p.add_argument("--models", default=env("BENCH_MODELS", ",".join(m.name for m in MODELS)),
                   help="comma-separated: " + ", ".join(m.name for m in MODELS) + " (env BENCH_MODELS)")
    p.add_argument("--batches", default=env("BENCH_BATCHES", "1,large"),
                   help="comma-separated batch sizes; 'large' is each model's large batch (env BENCH_BATCHES)")
    p.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "2")), help="threads for both (env BENCH_THREADS)")
    p.add_argument("--iterations", type=int, default=int(env("BENCH_ITERATIONS", "20")),
                   help="timed runs per side, at least 20 for a reported number (env BENCH_ITERATIONS)")
    p.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "3")), help="untimed runs first (env BENCH_WARMUP)")
    p.add_argument("--passes", type=int, default=int(env("BENCH_PASSES", "3")),
                   help="alternate the two sides this many times per row and keep each side's best median: "
                        "the machines are shared and noisy (env BENCH_PASSES)")
    p.add_argument("--cnnc-flag", action="append", default=[],
                   help="extra flag for `cnnc bench` and `cnnc run`, e.g. --cnnc-flag=--no-winograd (repeatable)")
    p.add_argument("--no-check", action="store_true", help="skip the `cnnc run` correctness comparison")
    p.add_argument("--work", default=env("BENCH_WORK", "build/bench"), help="ONNX files and inputs go here")
    p.add_argument("--fresh", action="store_true", help="export the torchvision models again even if their ONNX files exist")
    p.add_argument("--json", default=env("BENCH_JSON", "bench/results/latest.json"), help="where the results go")
    a = p.parse_args()
    known = {m.name: m for m in MODELS}
    names = [n for n in a.models.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    a.models = [known[n] for n in names]
    a.batches = [b for b in a.batches.split(",") if b]
    for b in a.batches:
        if b != "large" and not (b.isdigit() and int(b) >= 1):
            p.error(f"--batches takes positive integers and 'large', got '{b}'")
    if a.iterations < 1 or a.warmup < 0 or a.threads < 1 or a.passes < 1:
        p.error("--iterations >= 1, --warmup >= 0, --threads >= 1, --passes >= 1")
    return a


def cpu_description():
    """'AMD EPYC (family 25, model 17, 2 CPUs, avx512f)' from lscpu."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model_name": platform.processor() or "unknown"}
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    return {"model_name": fields.get("Model name", "unknown"), "family": fields.get("CPU family"),
            "model": fields.get("Model"), "cpus": fields.get("CPU(s)"),
            "vector": "avx512f" if "avx512f" in flags else ("avx2" if "avx2" in flags else "sse")}


def first_error_line(text):
    """The first non-empty line of an error (with the next one when it only introduces it,
    "...:"); for a Swift crash, the runtime's reason and where."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        m = re.search(r"(?:Fatal error|Swift runtime failure): (.*?)(?: in \S+ at (\S+?):(\d+)(?::\d+)?)?$", l)
        if m:
            where = f" ({os.path.basename(m.group(2))}:{m.group(3)})" if m.group(2) else ""
            return f"crashed: {m.group(1)}{where}"
    if not lines:
        return "no output"
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def failure(r):
    """What a failed subprocess said, in one line."""
    text = r.stderr + "\n" + r.stdout
    return first_error_line(text) if r.returncode >= 0 or "crash" in text else f"killed by signal {-r.returncode}"


def bench_input(batch, shape):
    """The input `cnnc bench` fills its buffers with: x[j] = ((j mod 1000) * 7919 mod 1000) / 1000."""
    j = np.arange(batch * int(np.prod(shape)), dtype=np.int64)
    return (((j % 1000) * 7919 % 1000).astype(np.float32) / np.float32(1000.0)).reshape((batch,) + tuple(shape))


# ---- ONNX files -------------------------------------------------------------------------------

def export_example(args, model, path):
    r = subprocess.run([args.cnnc, "export", f"Examples/{model.name}/model.net", "-o", path],
                       capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise RuntimeError(f"cnnc export failed: {first_error_line(r.stderr + r.stdout)}")


def export_torchvision(args, model, path):
    import torch
    import torch.nn as nn
    # torchvision's wheel is a CUDA build; its fake-kernel registrations do not load against
    # the CPU torch. The model constructors do not need them.
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import torchvision

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    net = getattr(torchvision.models, model.name)(weights=None)
    # Batch-norm statistics from a few forward passes on random data (a cumulative average),
    # so the inference-mode network computes something non-degenerate.
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand((8,) + model.shape, generator=g))
    net.eval()
    dummy = torch.rand((1,) + model.shape, generator=g)
    kwargs = dict(opset_version=17, input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, do_constant_folding=True)
    tmp = path + ".tmp"
    try:
        torch.onnx.export(net, dummy, tmp, dynamo=False, **kwargs)
    except TypeError:  # a torch without the `dynamo` switch: the TorchScript exporter is the default
        torch.onnx.export(net, dummy, tmp, **kwargs)
    os.replace(tmp, path)


def onnx_file(args, model):
    path = os.path.join(args.work, "onnx", f"{model.name}.onnx")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if model.kind == "example":
        export_example(args, model, path)  # always: it follows the .net file and cnnc's exporter
    elif args.fresh or not os.path.exists(path):
        log(f"{model.name}: exporting from torchvision")
        export_torchvision(args, model, path)
    return path


# ---- the two sides ----------------------------------------------------------------------------

def ort_session(args, path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_bench(args, session, x):
    """Median and minimum ms per batch, and the first output (for the correctness line)."""
    feed = {session.get_inputs()[0].name: x}
    for _ in range(args.warmup):
        session.run(None, feed)
    times = []
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - t0)
    out = session.run(None, feed)[0]
    median = statistics.median(times) * 1e3
    return {"median_ms": median, "min_ms": min(times) * 1e3, "images_per_s": x.shape[0] / median * 1e3,
            "iterations": args.iterations, "warmup": args.warmup}, out


def cnnc_bench(args, path, batch):
    """`cnnc bench --json`: its JSON object, or raises with the first line of the error."""
    cmd = [args.cnnc, "bench", path, "--batch", str(batch), "--threads", str(args.threads),
           "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--json"] + args.cnnc_flag
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(failure(r))
    return json.loads(lines[-1])


def cnnc_check(args, path, x, expected, folder):
    """max |cnnc - ORT| / max |ORT| over the first output, `cnnc run` on the same input."""
    xin, yout = os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy")
    np.save(xin, x)
    r = subprocess.run([args.cnnc, "run", path, "--input", xin, "--output", yout] + args.cnnc_flag,
                       capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise RuntimeError(failure(r))
    y = np.load(yout).astype(np.float64)
    e = expected.astype(np.float64)
    if y.shape != e.shape:
        raise RuntimeError(f"output shape {list(y.shape)}, ONNX Runtime gives {list(e.shape)}")
    scale = float(np.max(np.abs(e)))
    return float(np.max(np.abs(y - e))) / (scale if scale > 0 else 1.0)


# ---- the table --------------------------------------------------------------------------------

def log(text):
    print(text, file=sys.stderr, flush=True)


HEADER = (f"{'model':<13}{'batch':>6} | {'cnnc ms/batch':>13}{'img/s':>10} | {'ORT ms/batch':>12}{'img/s':>10}"
          f" | {'cnnc/ORT':>8} | {'load':>5} | max|cnnc-ORT|/max|ORT|")


def format_row(row):
    """One table line; a side that failed shows '-' for its numbers and its first error line at the end."""
    def side(r, width):
        return f"{r['median_ms']:>{width}.3f}{r['images_per_s']:>10.1f}" if r else f"{'-':>{width}}{'-':>10}"
    notes = []
    if row.get("cnnc_error"):
        notes.append(f"cnnc failed: {row['cnnc_error']}")
    if row.get("ort_error"):
        notes.append(f"ORT failed: {row['ort_error']}")
    if row.get("max_rel_error") is not None:
        notes.append(f"{row['max_rel_error']:.2e}")
    elif row.get("check_error"):
        notes.append(f"cnnc run failed: {row['check_error']}")
    ratio = f"{row['ratio']:>8.2f}" if row.get("ratio") is not None else f"{'-':>8}"
    load = f"{row['load_average']:>5.1f}" if row.get("load_average") is not None else f"{'-':>5}"
    return (f"{row['model']:<13}{row['batch']:>6} | {side(row.get('cnnc'), 13)} | {side(row.get('ort'), 12)} | {ratio} | "
            f"{load} | " + ("; ".join(notes) or "-"))


def run_row(args, model, path, session, batch):
    """Both sides on one batch: PASSES alternating passes, each side's best median, then the check."""
    row = {"model": model.name, "batch": batch, "onnx": path, "input_shape": [batch, *model.shape],
           "ort_passes_ms": [], "cnnc_passes_ms": []}
    x = bench_input(batch, model.shape)
    expected = None
    for p in range(args.passes):
        log(f"{model.name} batch {batch}, pass {p + 1}/{args.passes}: ONNX Runtime, then cnnc bench")
        if not row.get("ort_error"):
            try:
                result, expected = ort_bench(args, session, x)
                row["ort_passes_ms"].append(result["median_ms"])
                if "ort" not in row or result["median_ms"] < row["ort"]["median_ms"]:
                    row["ort"] = result
            except Exception as e:  # noqa: BLE001 - report and go on
                row["ort_error"] = first_error_line(str(e))
        if not row.get("cnnc_error"):
            try:
                result = cnnc_bench(args, path, batch)
                row["cnnc_passes_ms"].append(result["median_ms"])
                if "cnnc" not in row or result["median_ms"] < row["cnnc"]["median_ms"]:
                    row["cnnc"] = result
            except Exception as e:  # noqa: BLE001
                row["cnnc_error"] = str(e)
        if row.get("ort_error") and row.get("cnnc_error"):
            break
    row["load_average"] = os.getloadavg()[0]
    if row.get("cnnc") and row.get("ort"):
        row["ratio"] = row["cnnc"]["images_per_s"] / row["ort"]["images_per_s"]
    if row.get("cnnc") and expected is not None and not args.no_check:
        log(f"{model.name} batch {batch}: cnnc run (correctness)")
        try:
            row["max_rel_error"] = cnnc_check(args, path, x, expected, os.path.join(args.work, "inputs"))
        except Exception as e:  # noqa: BLE001
            row["check_error"] = str(e)
    return row


def main():
    args = parse_args()
    os.chdir(REPO)
    if not os.path.exists(args.cnnc):
        sys.exit(f"error: no cnnc at {args.cnnc} (swift build -c release --product cnnc)")
    cpu = cpu_description()
    now = datetime.datetime.now().astimezone()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    lines = [
        f"cnnc vs ONNX Runtime {ort.__version__}: inference, FP32, {args.threads} threads each, "
        f"best of {args.passes} pass(es) of the median of {args.iterations} runs after {args.warmup} warm-up runs",
        f"CPU: {cpu['model_name']} (family {cpu.get('family')}, model {cpu.get('model')}, "
        f"{cpu.get('cpus')} CPUs, {cpu.get('vector')}); date: {now:%Y-%m-%d %H:%M %Z}; cnnc {commit or 'unknown'}; "
        f"load average at start {load[0]:.2f}" + (f"; cnnc flags: {' '.join(args.cnnc_flag)}" if args.cnnc_flag else ""),
        "cnnc/ORT: throughput ratio (>1: cnnc faster); load: 1-minute load average after the row (this run alone makes about 2; "
        "more: others were running); last column: `cnnc run` against ORT on the benchmark input",
        "",
        HEADER,
        "-" * len(HEADER),
    ]
    for l in lines:
        print(l, flush=True)
    results = {"date": now.isoformat(timespec="seconds"), "cpu": cpu, "threads": args.threads,
               "iterations": args.iterations, "warmup": args.warmup, "passes": args.passes,
               "onnxruntime": ort.__version__, "cnnc_commit": commit, "cnnc_flags": args.cnnc_flag,
               "load_average_start": load, "rows": []}
    os.makedirs(os.path.join(args.work, "inputs"), exist_ok=True)
    for model in args.models:
        batches = [model.large_batch if b == "large" else int(b) for b in args.batches]
        try:
            path = onnx_file(args, model)
            session = ort_session(args, path)
        except Exception as e:  # noqa: BLE001 - one model's export must not stop the run
            for batch in batches:
                row = {"model": model.name, "batch": batch, "ort_error": f"no ONNX file: {first_error_line(str(e))}"}
                results["rows"].append(row)
                print(format_row(row), flush=True)
            continue
        for batch in batches:
            row = run_row(args, model, path, session, batch)
            results["rows"].append(row)
            print(format_row(row), flush=True)
            write_json(args.json, results)
    results["load_average_end"] = os.getloadavg()
    print(f"\nload average at the end {results['load_average_end'][0]:.2f}; results: {args.json}", flush=True)
    write_json(args.json, results)


def write_json(path, results):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
