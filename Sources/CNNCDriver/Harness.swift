// The driver program cnnc builds around generated code for `check` and `run`: it loads or
// seeds the weights, reads inputs from .npy files, fills the arena with NaN (so a read of
// anything not written in this run reaches the outputs), runs the forward pass and writes
// the outputs as .npy files.

import CNNCBackendC
import CNNCIR

enum Harness {
    /// The harness C source for a model generated with prefix `p` and header `header`.
    static func source(_ graph: Graph, prefix p: String, header: String) -> String {
        let P = p.uppercased()
        var w = CWriter()
        w.comment("""
        cnnc harness for network '\(graph.name)'.
        usage: harness (WEIGHTS.safetensors | seed=S) N INPUT.npy... OUTPUT.npy...
        """)
        w.line("#include \"\(header)\"")
        w.line("#include <math.h>")
        w.line("#include <stdio.h>")
        w.line("#include <stdlib.h>")
        w.line("#include <string.h>")
        w.line()
        let inputs = graph.inputs
        let outputs = graph.outputs.map { graph.node(named: $0)! }
        w.block("int main(int argc, char **argv)") { w in
            w.line("enum { NI = \(P)_NUM_INPUTS, NO = \(P)_NUM_OUTPUTS };")
            w.line("static const size_t in_size[\(max(inputs.count, 1))] = {\(inputs.map { "\($0.shape.count)" }.joined(separator: ", "))};")
            w.line("static const char *in_name[\(max(inputs.count, 1))] = {\(inputs.map { "\"\($0.name)\"" }.joined(separator: ", "))};")
            w.line("static const size_t out_size[\(max(outputs.count, 1))] = {\(outputs.map { "\($0.shape.count)" }.joined(separator: ", "))};")
            w.line("static const int out_rank[\(max(outputs.count, 1))] = {\(outputs.map { "\($0.shape.rank)" }.joined(separator: ", "))};")
            w.line("static const int64_t out_dims[\(max(outputs.count, 1))][3] = {\(outputs.map { "{" + ($0.shape.dims + Array(repeating: 1, count: 3 - $0.shape.rank)).map(String.init).joined(separator: ", ") + "}" }.joined(separator: ", "))};")
            w.block("if (argc != 3 + NI + NO)") { w in
                w.line("fprintf(stderr, \"usage: %s (WEIGHTS.safetensors | seed=S) N INPUT.npy... OUTPUT.npy...\\n\", argv[0]);")
                w.line("return 2;")
            }
            w.line("\(p)_context ctx;")
            w.line("cnnc_status s = \(p)_create(&ctx);")
            w.line("if (s == CNNC_OK) s = strncmp(argv[1], \"seed=\", 5) == 0 ? \(p)_init_weights(&ctx, strtoull(argv[1] + 5, NULL, 10)) : \(p)_load_weights(&ctx, argv[1]);")
            w.block("if (s != CNNC_OK)") { w in
                w.line("fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx));")
                w.line("return 1;")
            }
            w.line("const int n = atoi(argv[2]);")
            w.line("cnnc_array_f32 arrays[NI];")
            w.line("const float *inputs[NI];")
            w.line("float *outputs[NO];")
            w.line("cnnc_error err = {CNNC_OK, {0}};")
            w.block("for (int i = 0; i < NI; i++)") { w in
                w.block("if (cnnc_npy_read_f32(argv[3 + i], &arrays[i], &err) != CNNC_OK)") { w in
                    w.line("fprintf(stderr, \"error: %s\\n\", err.message);")
                    w.line("return 1;")
                }
                w.block("if (arrays[i].count != (size_t)n * in_size[i])") { w in
                    w.line("fprintf(stderr, \"error: input '%s' has %zu elements, expected %d x %zu\\n\", in_name[i], arrays[i].count, n, in_size[i]);")
                    w.line("return 1;")
                }
                w.line("inputs[i] = arrays[i].data;")
            }
            w.line("for (int i = 0; i < NO; i++) outputs[i] = malloc(sizeof(float) * (size_t)n * out_size[i]);")
            w.line("for (size_t i = 0; i < \(P)_ARENA_BYTES / sizeof(float); i++) ctx.arena[i] = NAN;")
            w.line("s = \(p)_forward_v(&ctx, inputs, outputs, n);")
            w.block("if (s != CNNC_OK)") { w in
                w.line("fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx));")
                w.line("return 1;")
            }
            w.block("for (int i = 0; i < NO; i++)") { w in
                w.line("int64_t shape[4] = {n, out_dims[i][0], out_dims[i][1], out_dims[i][2]};")
                w.block("if (cnnc_npy_write_f32(argv[3 + NI + i], outputs[i], out_rank[i] + 1, shape, &err) != CNNC_OK)") { w in
                    w.line("fprintf(stderr, \"error: %s\\n\", err.message);")
                    w.line("return 1;")
                }
                w.line("free(outputs[i]);")
            }
            w.line("for (int i = 0; i < NI; i++) cnnc_array_f32_free(&arrays[i]);")
            w.line("\(p)_destroy(&ctx);")
            w.line("return 0;")
        }
        return w.text
    }
}
