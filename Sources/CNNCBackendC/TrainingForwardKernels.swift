// The training-mode forward of the two ops that behave differently in training: batch norm
// on batch statistics (with the running-statistics update and the statistics the backward
// kernel reads) and dropout with the seeded mask of `DropoutMask`. Every other op's training
// forward is its inference kernel (KernelEmitter). Parallel only over independent outputs
// (channels, elements), so results are bitwise identical at any thread count.
//
// Signatures:
//   batch norm: node_<name>_train_forward(float *restrict out, float *restrict saved,
//       float *restrict running_mean, float *restrict running_var, const float *restrict in,
//       const float *restrict weight, const float *restrict bias, const cnnc_allreduce *sync,
//       int64_t samples, int n)
//     saved is 2*C floats: the batch mean[C], then invstd[C] = 1/sqrt(biased var + eps);
//     sync NULL: statistics over these n samples (samples == n); else over every process's
//     samples (`samples` in all), the per-channel sums added up across processes by sync
//   dropout: node_<name>_train_forward(float *restrict out, const float *restrict in,
//       uint64_t seed, int64_t step, int n)

import CNNCIR

/// Writes the training-mode forward function of a batch norm or dropout node.
enum TrainingForwardKernels {
    /// The arguments of the training forward function of `k.node`.
    static func arguments(_ k: BackwardContext) -> [KernelParameter] {
        switch k.node.op {
        case .batchNorm:
            return [.output("out"), .output("saved"), .output("running_mean"), .output("running_var"),
                    .input("in"), .input("weight"), .input("bias")] + KernelParameter.statisticsSync + [.count]
        case .dropout:
            return [.output("out"), .input("in"), KernelParameter(declaration: "uint64_t seed", name: "seed"),
                    KernelParameter(declaration: "int64_t step", name: "step"), .count]
        case .input, .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
             .lrn, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
            fatalError("compiler bug: \(k.node.displayName) has no training-mode forward kernel; use its inference kernel")
        }
    }

    /// `static void <function>(<arguments>)`.
    static func signature(_ k: BackwardContext) -> String {
        "static void \(k.function)(\(arguments(k).map(\.declaration).joined(separator: ", ")))"
    }

    /// Writes one complete static function (batch norm and dropout only).
    static func emit(_ k: BackwardContext, into w: inout CWriter) {
        let args = arguments(k)
        let summary: String
        switch k.node.op {
        case .batchNorm:
            summary = "training forward: batch statistics; updates running_mean and running_var; saved = mean[C], invstd[C]"
        case .dropout:
            summary = "training forward: inverted dropout with the mask of DropoutMask (seed, node, step, flat index)"
        case .input, .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
             .lrn, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
            summary = ""
        }
        BackwardKernels.writeFunction(k, signature: signature(k), arguments: args.map(\.name), summary: summary,
                                      into: &w) { w in
            switch k.node.op {
            case .batchNorm(let a): batchNorm(k, a, &w)
            case .dropout(let rate): dropout(k, rate: rate, &w)
            case .input, .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
                 .lrn, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                break
            }
        }
    }

    /// Per channel over its count = samples*INNER values (BatchNormStatistics):
    ///   mean = sum(x) / count;  var = sum((x - mean)^2) / count (biased, two passes in double)
    ///   out = (x - mean) * invstd * weight + bias,  invstd = 1 / sqrt(var + eps)
    ///   running_mean = (1 - m) * running_mean + m * mean
    ///   running_var  = (1 - m) * running_var  + m * var * count / (count - 1)
    /// Three loops over the channels, the two sums of each added up across processes by
    /// `sync` between them (synchronized batch norm); without it the same arithmetic on n.
    static func batchNorm(_ k: BackwardContext, _ a: BatchNormAttributes, _ w: inout CWriter) {
        let c = k.y.dims[0]
        w.line("enum { C = \(c), INNER = \(k.y.count / c) };")
        w.line("if (n <= 0) return;")
        w.line("const size_t count = (size_t)samples * INNER;")
        w.line("double sums[C], squares[C];")
        w.comment("""
        one task per channel: its sum, then (after the processes' sums are added) the squared
        deviations from the mean, then the statistics and outputs; the sums in double in vector
        lanes (omp simd: an order fixed by the build, not the thread count)
        """)
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int c = 0; c < C; c++)") { w in
            w.line("double sum = 0.0;")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.line("const float *restrict xc = in + ((size_t)b * C + c) * INNER;")
                w.line("#pragma omp simd reduction(+:sum)")
                w.line("for (int i = 0; i < INNER; i++) sum += xc[i];")
            }
            w.line("sums[c] = sum;")
        }
        w.line("if (sync) sync->sum_doubles(sync->context, sums, C);")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int c = 0; c < C; c++)") { w in
            w.line("const double mean = sums[c] / (double)count;")
            w.line("double sq = 0.0;")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.line("const float *restrict xc = in + ((size_t)b * C + c) * INNER;")
                w.line("#pragma omp simd reduction(+:sq)")
                w.line("for (int i = 0; i < INNER; i++) sq += (xc[i] - mean) * (xc[i] - mean);")
            }
            w.line("squares[c] = sq;")
        }
        w.line("if (sync) sync->sum_doubles(sync->context, squares, C);")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int c = 0; c < C; c++)") { w in
            w.line("const double mean = sums[c] / (double)count, var = squares[c] / (double)count;")
            w.line("const double invstd = 1.0 / sqrt(var + \(cDouble(a.epsilon)));")
            w.line("const double unbiased = count > 1 ? var * (double)count / (double)(count - 1) : var;")
            w.line("saved[c] = (float)mean;")
            w.line("saved[C + c] = (float)invstd;")
            w.line("running_mean[c] = (float)((1.0 - \(cDouble(a.momentum))) * running_mean[c] + \(cDouble(a.momentum)) * mean);")
            w.line("running_var[c] = (float)((1.0 - \(cDouble(a.momentum))) * running_var[c] + \(cDouble(a.momentum)) * unbiased);")
            w.line("const float m = (float)mean, scale = (float)invstd * weight[c], shift = bias[c];")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.line("const float *restrict xc = in + ((size_t)b * C + c) * INNER;")
                w.line("float *restrict o = out + ((size_t)b * C + c) * INNER;")
                w.line("#pragma omp simd")
                w.line("for (int i = 0; i < INNER; i++) o[i] = (xc[i] - m) * scale + shift;")
            }
        }
    }

    /// out = in * 1/(1-rate) where DropoutMask keeps the element (flat index in the batch), else 0.
    static func dropout(_ k: BackwardContext, rate: Double, _ w: inout CWriter) {
        w.line("const size_t total = (size_t)n * \(k.y.count);")
        ElementwiseBackward.dropoutStream(k.node, &w)
        w.comment("one task per element: the mask is a pure function of (seed, node, step, index)")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (size_t i = 0; i < total; i++)") { w in
            ElementwiseBackward.dropoutKeep(rate: rate, &w)
            w.line("out[i] = keep ? in[i] * \(cFloat(DropoutMask.scale(rate: rate))) : 0.0f;")
        }
    }
}
