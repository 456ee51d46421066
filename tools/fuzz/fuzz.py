#!/usr/bin/env python3
"""Structure-aware fuzzer for cnnc (issue #14).

Mutates inputs of five families and runs cnnc on each:

  net          .net files: lines dropped, duplicated and swapped, numbers replaced by edge
               values (0, -1, 2^31, 2^63, 1e308, nan), layers and keys inserted
  onnx         ONNX models: protobuf wire-format fields (varints set to edge values,
               length-delimited fields dropped, duplicated or recursed into) and truncation
  safetensors  headers: shapes, dtypes, data_offsets, header length, duplicate keys, a BOM
  npy          headers: shape, descr, header length, fortran_order
  names        .net files whose names are C keywords, macros and the API's own parameters

Each input goes through `cnnc summary`, `cnnc MODEL -o OUT.c` (then gcc -Wall -Wextra -Werror
on the C), or `cnnc run --interpret` / `cnnc run --weights` for arrays and weights. A crash
(a signal or exit 132/134: a Swift trap), a hang (over --timeout seconds, and again over six
times that on a second run: a loaded machine can stretch one run) or C that gcc refuses is
saved under OUT/<kind>/ with the command that showed it.

The two readers of each binary format are compared: every safetensors input also goes to the
generated C's `<p>_load_weights` (the C runtime's reader, in a loader program built once per
run), and a different verdict (one loads the weights, the other refuses them) is saved as a
`disagree` finding; every `.npy` input also goes to the C runtime's `cnnc_npy_read_f32` (no
verdict compared: `run` also checks the array against the model). The loader is built with
gcc's -fsanitize-coverage=trace-pc on the runtime, and records which of the runtime's basic
blocks each input reached.

The report gives per family: inputs, executions (processes run on them: cnnc, gcc on the C it
wrote, the loader), outcome classes
(distinct pairs of exit status and first stderr line with numbers and quoted names blanked:
a coarse measure of distinct behaviours of cnnc, not of code paths), and for safetensors and
npy the C runtime's coverage: distinct sets of basic blocks reached (one per distinct path
through the reader, up to order and repetition) and the number of its basic blocks reached.

  python3 tools/fuzz/fuzz.py --seconds 60 --seed 1 [--family net] [--cnnc .build/debug/cnnc]

Deterministic for a seed and an execution count (--runs); with --seconds the count depends on
the machine. Exits 1 when it saved a finding. Once fixed, a crash, hang or bad-c finding's
folder goes into tools/fuzz/corpus/ (as KIND-FAMILY-HASH), where FuzzCorpusTests replays it in
`make test`; a `disagree` finding becomes a case of Runtime/tests/safetensors_spec.txt, which
both readers' tests read.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EDGE_INTS = [0, 1, -1, 2, 3, 7, 255, 65535, 1 << 20, (1 << 20) + 1, (1 << 31) - 1, 1 << 31, 1 << 32,
             (1 << 62), (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
EDGE_WORDS = ["0", "-1", "1", "2147483648", "9223372036854775807", "9223372036854775808",
              "99999999999999999999", "1e308", "1e-308", "nan", "inf", "-inf", "0.5", "", "x"]
C_NAMES = ["int", "float", "return", "NULL", "EOF", "ctx", "n", "inputs", "outputs", "size_t",
           "main", "errno", "class", "INFINITY", "cnnc_x", "_Bool", "auto", "A", "a", "t",
           # names that meet another's once the generated code adds a role or a prefix
           "a_backward", "a_train_forward", "a_backward_2", "node_a", "train_node_a", "t_forward",
           "train_forward", "pack_parameters", "splitmix64", "name_hash", "parameters", "init_table"]
LAYERS = ["relu", "sigmoid", "tanh", "dropout rate=0.5", "batchnorm", "maxpool size=2 stride=2",
          "avgpool size=2", "global_avgpool", "flatten", "dense units=4", "conv filters=4 size=3 pad=1",
          "conv filters=2 size=1", "softmax", "leaky_relu alpha=0.1", "lrn size=3", "add from=x,x",
          "concat from=x,x"]
CRASH_CODES = {132, 133, 134, 136, 137, 139}
FAMILIES = ["net", "names", "onnx", "safetensors", "npy"]


# ---- mutators ---------------------------------------------------------------------------

def mutate_net(text, rng):
    lines = text.split("\n")
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        if choice == 0 and len(lines) > 1:
            del lines[rng.randrange(len(lines))]
        elif choice == 1 and lines:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
        elif choice == 2 and len(lines) > 1:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif choice == 3:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(LAYERS))
        elif choice == 4 and lines:
            i = rng.randrange(len(lines))
            words = lines[i].split(" ")
            k = rng.randrange(len(words))
            if "=" in words[k]:
                key, _, _ = words[k].partition("=")
                words[k] = key + "=" + rng.choice(EDGE_WORDS)
            else:
                words[k] = rng.choice(EDGE_WORDS + C_NAMES)
            lines[i] = " ".join(words)
        elif choice == 5 and lines:
            i = rng.randrange(len(lines))
            lines[i] = lines[i] + " " + rng.choice(["x=1", "from=" + rng.choice(C_NAMES), "frozen=true", "bias=false"])
        else:
            lines.insert(rng.randrange(len(lines) + 1), "output " + ",".join(rng.choice(C_NAMES) for _ in range(2)))
    return "\n".join(lines)


def mutate_names(text, rng):
    """Renames layers and inputs to C keywords, macros, API parameter names and names that
    meet generated symbols (mostly distinct, so that most models still compile)."""
    out = []
    names = {}
    pool = C_NAMES[:]
    rng.shuffle(pool)
    for line in text.split("\n"):
        words = line.split()
        if len(words) >= 2 and not words[0].startswith("#") and "=" not in words[1] and words[0] != "output":
            if rng.random() < 0.05:
                new = rng.choice(C_NAMES)  # a name defined twice, now and then
            elif pool:
                new = pool.pop()
            else:
                new = f"{rng.choice(C_NAMES)}_{len(names)}"
            names[words[1]] = new
            words[1] = new
        out.append(" ".join(words))
    text = "\n".join(out)
    # the same renaming in from= lists and output lines
    text = re.sub(r"(from=)([\w,]+)", lambda m: m.group(1) + ",".join(names.get(n, n) for n in m.group(2).split(",")), text)
    text = re.sub(r"^(output\s+)([\w,]+)", lambda m: m.group(1) + ",".join(names.get(n, n) for n in m.group(2).split(",")),
                  text, flags=re.M)
    return text


def read_varint(data, i):
    value, shift = 0, 0
    while i < len(data):
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i
        if shift > 70:
            break
    raise ValueError("bad varint")


def varint(value):
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse_fields(data):
    """Protobuf wire format into [(field, wiretype, value bytes or int)], or None."""
    fields, i = [], 0
    try:
        while i < len(data):
            key, i = read_varint(data, i)
            field, wire = key >> 3, key & 7
            if wire == 0:
                v, i = read_varint(data, i)
                fields.append((field, 0, v))
            elif wire == 1:
                fields.append((field, 1, data[i:i + 8]))
                i += 8
            elif wire == 2:
                n, i = read_varint(data, i)
                if i + n > len(data):
                    return None
                fields.append((field, 2, data[i:i + n]))
                i += n
            elif wire == 5:
                fields.append((field, 5, data[i:i + 4]))
                i += 4
            else:
                return None
    except ValueError:
        return None
    return fields if i == len(data) else None


def serialize_fields(fields):
    out = bytearray()
    for field, wire, v in fields:
        out += varint(field << 3 | wire)
        if wire == 0:
            out += varint(v)
        elif wire == 2:
            out += varint(len(v)) + v
        else:
            out += v
    return bytes(out)


def mutate_message(data, rng, depth=0):
    fields = parse_fields(data)
    if not fields:
        return data
    k = rng.randrange(len(fields))
    field, wire, v = fields[k]
    choice = rng.randrange(6)
    if wire == 2 and depth < 8 and choice < 3 and parse_fields(v):
        fields[k] = (field, 2, mutate_message(v, rng, depth + 1))
    elif wire == 0:
        fields[k] = (field, 0, rng.choice(EDGE_INTS))
    elif wire == 5 and choice < 4:
        fields[k] = (field, 5, struct.pack("<f", rng.choice([float("nan"), float("inf"), -1.0, 0.0, 1e38])))
    elif choice == 3:
        del fields[k]
    elif choice == 4:
        fields.insert(k, fields[k])
    elif wire == 2 and v:
        cut = rng.randrange(len(v))
        fields[k] = (field, 2, v[:cut])
    return serialize_fields(fields)


def mutate_onnx(data, rng):
    if rng.random() < 0.15:
        return data[:rng.randrange(len(data))]
    for _ in range(rng.randint(1, 3)):
        data = mutate_message(data, rng)
    return data


def safetensors_seed():
    header = {"d.weight": {"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 36]},
              "d.bias": {"dtype": "F32", "shape": [3], "data_offsets": [36, 48]}}
    return header, bytes(48)


def mutate_safetensors(rng):
    header, payload = safetensors_seed()
    raw = None
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(list(header))
        entry = header[name]
        choice = rng.randrange(10)
        if choice == 0:
            entry["shape"] = [rng.choice(EDGE_INTS + [-1, -4]) for _ in range(rng.randint(0, 4))]
        elif choice == 1:
            entry["data_offsets"] = [rng.choice(EDGE_INTS + [-8]), rng.choice(EDGE_INTS)]
        elif choice == 2:
            entry["dtype"] = rng.choice(["F16", "F64", "I64", "BOOL", "", "f32"])
        elif choice == 3:
            entry["data_offsets"] = [0.5, 24]
        elif choice == 4:
            header["__metadata__"] = {"k": rng.choice(["v", 1, None])}
        elif choice == 5:
            raw = json.dumps(header)[:-1] + ', "d.bias": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
        elif choice == 6:
            raw = rng.choice(["\ufeff", " ", "\n", "\x00"]) + json.dumps(header)
        elif choice == 7:
            payload = payload[:rng.randrange(len(payload) + 1)]
        elif choice == 8:
            # tensors that are not parameters: skipped by both loaders, or refused by both
            extra = rng.choice(["d.num_batches_tracked", "d.weight.momentum", "e.weight", ".momentum", "d.bias"])
            header[extra] = {"dtype": rng.choice(["I64", "F32", "U8"]), "shape": [], "data_offsets": [48, 48 + 8]}
            payload = payload + bytes(8)
        else:
            # a number of the JSON text replaced by a form the grammar may refuse
            raw = raw or json.dumps(header)
            numbers = [m for m in re.finditer(r"-?\d+", raw)]
            if numbers:
                m = rng.choice(numbers)
                token = rng.choice(["8.0", "1e1", "-0", "01", "4.5", "18446744073709551616", "1E1", "36.", "0x24"])
                raw = raw[:m.start()] + token + raw[m.end():]
    text = (raw or json.dumps(header)).encode()
    length = len(text)
    if rng.random() < 0.2:
        length = rng.choice(EDGE_INTS)
    return struct.pack("<Q", length & ((1 << 64) - 1)) + text + payload


def mutate_npy(rng):
    shape = "(1, 3)"
    descr = "<f4"
    order = "False"
    choice = rng.randrange(5)
    if choice == 0:
        shape = "(" + ", ".join(str(rng.choice(EDGE_INTS + [-1])) for _ in range(rng.randint(0, 4))) + ",)"
    elif choice == 1:
        descr = rng.choice(["<f8", "|u1", "<i8", ">f4", "<f2", "O", ""])
    elif choice == 2:
        order = "True"
    elif choice == 3:
        shape = rng.choice(["(1, 3", "1, 3)", "(1.5, 3)", "(nan,)", "()"])
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, order, shape)
    payload = struct.pack("<3d", 1.0, 1e300, float("nan")) if descr == "<f8" else bytes(12)
    hl = len(header)
    if choice == 4:
        hl = rng.choice([0, 1, 65535, len(header) + 1000])
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", hl & 0xFFFF) + header.encode() + payload


# ---- the C runtime's readers --------------------------------------------------------------

LOADER_MAIN = r"""
/* The fuzzer's C side: `loader weights FILE` loads FILE into the generated model t with
 * t_load_weights (exit 0 when it loads, 1 when refused); `loader npy FILE` reads FILE with
 * cnnc_npy_read_f32. The runtime is compiled with -fsanitize-coverage=trace-pc: each basic
 * block reached calls __sanitizer_cov_trace_pc, and the distinct blocks (as offsets from
 * write_blocks, stable under ASLR) are written to $CNNC_FUZZ_BLOCKS at exit. */
#include "t.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (1u << 16)
static uintptr_t blocks[SLOTS];
static unsigned block_count;

void __sanitizer_cov_trace_pc(void);
void __sanitizer_cov_trace_pc(void) {
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    unsigned h = (unsigned)((pc * 0x9E3779B97F4A7C15ull) >> 48) & (SLOTS - 1);
    while (blocks[h] != 0 && blocks[h] != pc) h = (h + 1) & (SLOTS - 1);
    if (blocks[h] == 0 && block_count < SLOTS / 2) { blocks[h] = pc; block_count++; }
}

static void write_blocks(void) {
    const char *path = getenv("CNNC_FUZZ_BLOCKS");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) return;
    for (unsigned i = 0; i < SLOTS; i++)
        if (blocks[i]) fprintf(f, "%lld\n", (long long)(blocks[i] - (uintptr_t)&write_blocks));
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    atexit(write_blocks);
    if (strcmp(argv[1], "npy") == 0) {
        cnnc_array_f32 a;
        cnnc_error err = {CNNC_OK, ""};
        cnnc_status s = cnnc_npy_read_f32(argv[2], &a, &err);
        if (s != CNNC_OK) { fprintf(stderr, "%s\n", err.message); return 1; }
        cnnc_array_f32_free(&a);
        return 0;
    }
    t_context ctx;
    if (t_create(&ctx) != CNNC_OK) return 2;
    cnnc_status s = t_load_weights(&ctx, argv[2]);
    if (s != CNNC_OK) fprintf(stderr, "%s\n", t_last_error(&ctx));
    t_destroy(&ctx);
    return s == CNNC_OK ? 0 : 1;
}
"""


class CLoader:
    """The loader program above, built once from the generated C of `net`."""

    def __init__(self, cnnc, net, work):
        self.path = None
        folder = os.path.join(work, "loader")
        os.makedirs(folder)
        open(os.path.join(folder, "t.net"), "w").write(net)
        open(os.path.join(folder, "main.c"), "w").write(LOADER_MAIN)
        steps = [[cnnc, "t.net", "-o", "t.c", "--prefix", "t"],
                 ["gcc", "-std=c11", "-O1", "-fsanitize-coverage=trace-pc", "-c", "cnnc_runtime.c", "-o", "runtime.o"],
                 ["gcc", "-std=c11", "-O1", "-fopenmp", "-I.", "main.c", "t.c", "runtime.o", "-lm", "-o", "loader"]]
        for argv in steps:
            p = subprocess.run(argv, cwd=folder, capture_output=True)
            if p.returncode != 0:
                print(f"note: no C loader ({' '.join(argv[:2])}: {p.stderr.decode('utf-8', 'replace')[:300]})")
                return
        self.path = os.path.join(folder, "loader")
        self.blocks_file = os.path.join(folder, "blocks.txt")

    def run(self, mode, file, timeout):
        """(exit status or "hang", first stderr line, frozenset of basic blocks reached)."""
        if os.path.exists(self.blocks_file):
            os.remove(self.blocks_file)
        env = dict(os.environ, CNNC_FUZZ_BLOCKS=self.blocks_file)
        try:
            p = subprocess.run([self.path, mode, file], capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return "hang", "", frozenset()
        blocks = frozenset()
        if os.path.exists(self.blocks_file):
            blocks = frozenset(int(x) for x in open(self.blocks_file).read().split())
        return p.returncode, p.stderr.decode("utf-8", "replace").split("\n")[0], blocks


def outcome_class(code, err):
    """Exit status and the first stderr line with paths, quoted names and numbers blanked."""
    line = err.split("\n")[0]
    line = re.sub(r"'[^']*'", "'_'", line)
    line = re.sub(r"/[^\s:']+", "PATH", line)
    line = re.sub(r"\d+", "N", line)
    return (code if code != "hang" else -999, line[:120])


# ---- running ----------------------------------------------------------------------------

class Fuzzer:
    def __init__(self, args):
        self.cnnc = os.path.abspath(args.cnnc)
        self.timeout = args.timeout
        self.out = os.path.abspath(args.out)
        self.rng = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="cnnc-fuzz-")
        self.runtime = os.path.join(self.work, "runtime")
        self.findings = 0
        self.found = {}       # family -> {kind: count}
        self.inputs = {}      # family -> inputs tried
        self.executions = {}  # family -> processes run on them (cnnc and the loader)
        self.outcomes = {}    # family -> set of outcome classes
        self.paths = {}       # family -> set of frozensets of the runtime's blocks reached
        self.blocks = {}      # family -> union of those blocks
        self.seconds = {}     # family -> time spent
        self.nets = [open(os.path.join(ROOT, "Examples", d, "model.net")).read()
                     for d in sorted(os.listdir(os.path.join(ROOT, "Examples")))
                     if os.path.exists(os.path.join(ROOT, "Examples", d, "model.net"))]
        fixtures = os.path.join(ROOT, "Tests", "ONNXTests", "Fixtures")
        self.onnx = [open(os.path.join(fixtures, f), "rb").read() for f in sorted(os.listdir(fixtures))
                     if f.endswith(".onnx") and os.path.getsize(os.path.join(fixtures, f)) < 2_000_000]
        self.small = "network t\ninput x shape=3\ndense d units=3\n"
        self.slow = 0  # timeouts a second run with six times the limit did not confirm
        self.loader = None
        if set(args.family or FAMILIES) & {"safetensors", "npy"}:
            self.loader = CLoader(self.cnnc, self.small, self.work)
            if self.loader.path is None:
                self.loader = None

    def run(self, argv, cwd):
        # A timeout is confirmed by a second run with six times the limit: on a shared, loaded
        # machine (the fuzzer runs at low priority) an input that takes 2 s can miss 10 s once.
        start = time.time()
        for limit in (self.timeout, 6 * self.timeout):
            try:
                p = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=limit)
                if limit != self.timeout:
                    self.slow += 1
                return p.returncode, p.stderr.decode("utf-8", "replace"), time.time() - start
            except subprocess.TimeoutExpired:
                continue
        return "hang", "", time.time() - start

    def save(self, kind, family, files, argv, detail):
        digest = hashlib.sha1(b"".join(files.values()) + " ".join(argv).encode()).hexdigest()[:12]
        folder = os.path.join(self.out, kind, f"{family}-{digest}")
        if os.path.exists(folder):
            return
        os.makedirs(folder)
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        with open(os.path.join(folder, "command.txt"), "w") as f:
            f.write(" ".join(argv).replace(self.cnnc, "cnnc") + "\n\n" + detail[-4000:] + "\n")
        self.findings += 1
        kinds = self.found.setdefault(family, {})
        kinds[kind] = kinds.get(kind, 0) + 1
        print(f"  {kind}: {folder}", flush=True)

    def check(self, family, files, argv, cwd):
        code, err, _ = self.run(argv, cwd)
        self.executions[family] = self.executions.get(family, 0) + 1
        self.outcomes.setdefault(family, set()).add(outcome_class(code, err))
        if code == "hang":
            self.save("hang", family, files, argv, f"no answer in {self.timeout} s, nor in {6 * self.timeout} s")
        elif code in CRASH_CODES or (isinstance(code, int) and code < 0):
            self.save("crash", family, files, argv, f"exit {code}\n{err}")
        return code, err

    def check_c(self, family, files, mode, name, cwd):
        """The C runtime's reader on files[name]: crashes and hangs saved, blocks counted."""
        code, err, blocks = self.loader.run(mode, os.path.join(cwd, name), self.timeout)
        self.executions[family] = self.executions.get(family, 0) + 1
        self.outcomes.setdefault(family, set()).add(("C",) + outcome_class(code, err))
        self.paths.setdefault(family, set()).add(blocks)
        self.blocks.setdefault(family, set()).update(blocks)
        argv = ["loader", mode, name]
        if code == "hang":
            self.save("hang", family, files, argv, f"the C loader: no answer in {self.timeout} s")
        elif isinstance(code, int) and (code < 0 or code > 2):
            self.save("crash", family, files, argv, f"the C loader: exit {code}\n{err}")
        return code, err

    def compile_c(self, family, files, cwd):
        """cnnc MODEL -o out/m.c, then gcc -Werror on the C it wrote."""
        out = os.path.join(cwd, "out")
        shutil.rmtree(out, ignore_errors=True)
        argv = [self.cnnc, "model.net" if "model.net" in files else "model.onnx", "-o", "out/m.c"]
        if self.rng.random() < 0.3:
            argv.append("--train")
        if self.check(family, files, argv, cwd)[0] != 0:
            return
        gcc = ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fopenmp", "-fsyntax-only", "-Iout", "out/m.c"]
        p = subprocess.run(gcc, cwd=cwd, capture_output=True, timeout=120)
        self.executions[family] = self.executions.get(family, 0) + 1
        if p.returncode != 0:
            self.save("bad-c", family, files, argv + ["&&"] + gcc, p.stderr.decode("utf-8", "replace"))

    def one(self, family):
        cwd = tempfile.mkdtemp(dir=self.work)
        start = time.time()
        self.inputs[family] = self.inputs.get(family, 0) + 1
        try:
            if family in ("net", "names"):
                base = self.rng.choice(self.nets)
                text = mutate_net(base, self.rng) if family == "net" else mutate_names(base, self.rng)
                files = {"model.net": text.encode()}
                open(os.path.join(cwd, "model.net"), "w").write(text)
                share = 0.3 if family == "net" else 0.6
                if self.check(family, files, [self.cnnc, "summary", "model.net"], cwd)[0] == 0 and self.rng.random() < share:
                    self.compile_c(family, files, cwd)
            elif family == "onnx":
                data = mutate_onnx(self.rng.choice(self.onnx), self.rng)
                files = {"model.onnx": data}
                open(os.path.join(cwd, "model.onnx"), "wb").write(data)
                if self.check(family, files, [self.cnnc, "summary", "model.onnx"], cwd)[0] == 0 and self.rng.random() < 0.2:
                    self.compile_c(family, files, cwd)
            elif family == "safetensors":
                data = mutate_safetensors(self.rng)
                files = {"w.safetensors": data, "model.net": self.small.encode()}
                open(os.path.join(cwd, "w.safetensors"), "wb").write(data)
                open(os.path.join(cwd, "model.net"), "w").write(self.small)
                header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }"
                np_in = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(12)
                open(os.path.join(cwd, "x.npy"), "wb").write(np_in)
                argv = [self.cnnc, "run", "model.net", "--input", "x.npy", "--output", "y.npy", "--interpret",
                        "--weights", "w.safetensors"]
                code, err = self.check(family, files, argv, cwd)
                if self.loader and isinstance(code, int) and code in (0, 1):
                    c_code, c_err = self.check_c(family, files, "weights", "w.safetensors", cwd)
                    if c_code in (0, 1) and c_code != code:
                        self.save("disagree", family, files, argv + ["vs", "loader", "weights", "w.safetensors"],
                                  f"cnnc run --interpret: exit {code}: {err.strip()}\n"
                                  f"the generated load_weights: exit {c_code}: {c_err}")
            elif family == "npy":
                data = mutate_npy(self.rng)
                files = {"x.npy": data, "model.net": self.small.encode()}
                open(os.path.join(cwd, "x.npy"), "wb").write(data)
                open(os.path.join(cwd, "model.net"), "w").write(self.small)
                self.check(family, files, [self.cnnc, "run", "model.net", "--input", "x.npy", "--output", "y.npy",
                                           "--interpret"], cwd)
                if self.loader:
                    self.check_c(family, files, "npy", "x.npy", cwd)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
            self.seconds[family] = self.seconds.get(family, 0) + time.time() - start

    def report(self, json_path=None):
        rows = []
        for family in sorted(self.inputs):
            row = {"family": family, "seconds": round(self.seconds.get(family, 0)), "inputs": self.inputs[family],
                   "executions": self.executions.get(family, 0),
                   "outcome_classes": len(self.outcomes.get(family, ())),
                   "findings": self.found.get(family, {})}
            if family in self.paths:
                row["c_block_sets"] = len(self.paths[family])
                row["c_blocks"] = len(self.blocks[family])
            rows.append(row)
            line = (f"{family:12} {row['seconds']:6d} s {row['inputs']:7d} inputs {row['executions']:7d} executions "
                    f"{row['outcome_classes']:5d} outcome classes")
            if "c_blocks" in row:
                line += f"  C runtime: {row['c_block_sets']} distinct block sets, {row['c_blocks']} blocks"
            found = ", ".join(f"{n} {k}" for k, n in sorted(row["findings"].items())) or "no findings"
            print(line + "  " + found)
        print(f"findings: {self.findings}" + (f" (under {self.out})" if self.findings else "")
              + (f"; {self.slow} timeouts not confirmed by a second run with {6 * self.timeout:g} s" if self.slow else ""))
        if json_path:
            with open(json_path, "w") as f:
                json.dump(rows, f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cnnc", default=os.path.join(ROOT, ".build", "debug", "cnnc"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs (0: by time)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10, help="seconds before an input counts as a hang")
    parser.add_argument("--family", action="append", choices=FAMILIES)
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "fuzz"))
    parser.add_argument("--json", help="also write the per-family report to this file")
    args = parser.parse_args()
    if not os.access(args.cnnc, os.X_OK):
        sys.exit(f"error: no cnnc at {args.cnnc} (swift build first)")
    families = args.family or FAMILIES
    fuzzer = Fuzzer(args)
    print(f"fuzzing {', '.join(families)} with seed {args.seed} for "
          + (f"{args.runs} inputs" if args.runs else f"{args.seconds:g} s"), flush=True)
    start, n = time.time(), 0
    try:
        while (args.runs and n < args.runs) or (not args.runs and time.time() - start < args.seconds):
            fuzzer.one(families[n % len(families)])
            n += 1
    finally:
        shutil.rmtree(fuzzer.work, ignore_errors=True)
    fuzzer.report(args.json)
    sys.exit(1 if fuzzer.findings else 0)


if __name__ == "__main__":
    main()
