#!/usr/bin/env python3
"""Writes the full-size ImageNet example networks as `.net` files, exactly as torchvision
defines them (3x224x224 input, 1000 classes), and checks each one's trainable parameter
count against the number torchvision's models report.

    python3 Examples/imagenet/generate.py          # (re)write the .net files next to this script
    python3 Examples/imagenet/generate.py --check  # exit 1 if a file on disk differs

The parameter count is tallied here, layer by layer, as the lines are written: shapes are
tracked independently of cnnc, using PyTorch's conv/pool output-size formula, and counted
the way `sum(p.numel() for p in model.parameters())` counts them (batch-norm running
statistics are buffers and do not count). Layer names are torchvision's module paths with
'.' replaced by '_', so that the parameter names (NAME.weight, NAME.bias, NAME.running_mean,
NAME.running_var) are the keys of torchvision's state_dict.

Only the Python standard library is used.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def window_out(size, kernel, stride, pad, ceil_mode):
    """One output size of a sliding window, as PyTorch computes it (dilation 1, symmetric pad)."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # PyTorch: in ceil mode the last window must start inside the input or the left padding.
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class Net:
    """Accumulates `.net` lines while tracking shapes (C, H, W) or (F,) and parameters."""

    def __init__(self, name, header):
        self.name = name
        self.lines = [f"# {line}".rstrip() for line in header.strip("\n").split("\n")]
        self.lines += ["", f"network {name}", "input image shape=3x224x224"]
        self.shapes = {"image": (3, 224, 224)}
        self.last = "image"
        self.params = 0

    def blank(self):
        self.lines.append("")

    def comment(self, text):
        self.lines.append(f"# {text}")

    def _emit(self, op, name, attrs, inputs, shape, note=""):
        assert name not in self.shapes, f"duplicate name {name}"
        parts = [op, name] + [f"{k}={v}" for k, v in attrs]
        if inputs != [self.last]:
            parts.append("from=" + ",".join(inputs))
        text = " ".join(parts)
        note = note or ("x".join(map(str, shape)) if op in ("conv", "maxpool", "avgpool", "concat",
                                                            "global_avgpool") else "")
        self.lines.append(f"{text:<72}  # {note}" if note else text)
        self.shapes[name] = shape
        self.last = name
        return name

    def _input(self, frm):
        inputs = frm if isinstance(frm, list) else [frm or self.last]
        return inputs, self.shapes[inputs[0]]

    def conv(self, name, filters, size, stride=1, pad=0, bias=True, frm=None):
        inputs, (c, h, w) = self._input(frm)
        oh, ow = window_out(h, size, stride, pad, False), window_out(w, size, stride, pad, False)
        self.params += filters * c * size * size + (filters if bias else 0)
        attrs = [("filters", filters), ("size", size)]
        attrs += [("stride", stride)] if stride != 1 else []
        attrs += [("pad", pad)] if pad != 0 else []
        attrs += [("bias", "false")] if not bias else []
        return self._emit("conv", name, attrs, inputs, (filters, oh, ow))

    def pool(self, op, name, size, stride, pad=0, ceil_mode=False, frm=None):
        inputs, (c, h, w) = self._input(frm)
        assert 2 * pad <= size
        shape = (c, window_out(h, size, stride, pad, ceil_mode), window_out(w, size, stride, pad, ceil_mode))
        attrs = [("size", size)]
        attrs += [("stride", stride)] if stride != size else []
        attrs += [("pad", pad)] if pad != 0 else []
        attrs += [("ceil_mode", "true")] if ceil_mode else []
        return self._emit(op, name, attrs, inputs, shape)

    def maxpool(self, name, size, stride, pad=0, ceil_mode=False, frm=None):
        return self.pool("maxpool", name, size, stride, pad, ceil_mode, frm)

    def avgpool(self, name, size, stride, frm=None):
        return self.pool("avgpool", name, size, stride, 0, False, frm)

    def batchnorm(self, name, eps=None, frm=None):
        inputs, shape = self._input(frm)
        self.params += 2 * shape[0]
        return self._emit("batchnorm", name, [("eps", eps)] if eps else [], inputs, shape)

    def relu(self, name, frm=None):
        inputs, shape = self._input(frm)
        return self._emit("relu", name, [], inputs, shape)

    def dropout(self, name, rate, frm=None):
        inputs, shape = self._input(frm)
        return self._emit("dropout", name, [("rate", rate)], inputs, shape)

    def global_avgpool(self, name, frm=None):
        inputs, (c, _, _) = self._input(frm)
        return self._emit("global_avgpool", name, [], inputs, (c, 1, 1))

    def dense(self, name, units, frm=None):
        inputs, shape = self._input(frm)
        features = 1
        for d in shape:
            features *= d
        self.params += units * features + units
        note = f"flattens {features} -> {units}" if len(shape) > 1 else ""
        return self._emit("dense", name, [("units", units)], inputs, (units,), note)

    def add(self, name, inputs):
        assert len({self.shapes[i] for i in inputs}) == 1, [self.shapes[i] for i in inputs]
        return self._emit("add", name, [], inputs, self.shapes[inputs[0]])

    def concat(self, name, inputs):
        rest = {self.shapes[i][1:] for i in inputs}
        assert len(rest) == 1, [self.shapes[i] for i in inputs]
        channels = sum(self.shapes[i][0] for i in inputs)
        return self._emit("concat", name, [], inputs, (channels,) + rest.pop())

    def text(self):
        return "\n".join(self.lines) + "\n"


def alexnet():
    net = Net("alexnet", """
AlexNet as torchvision.models.alexnet defines it (the "one weird trick" variant of
Krizhevsky, "One weird trick for parallelizing convolutional neural networks", 2014: 64,
192, 384, 256, 256 filters, no LRN), for 3x224x224 images and 1000 ImageNet classes.
torchvision's AdaptiveAvgPool2d((6, 6)) between features and classifier is omitted: at
224x224 input the features are already 256x6x6, so it is the identity.
61,100,840 trainable parameters. Generated by generate.py; do not edit by hand.
""")
    net.conv("features_0", 64, 11, stride=4, pad=2)
    net.relu("features_1")
    net.maxpool("features_2", 3, 2)
    net.conv("features_3", 192, 5, pad=2)
    net.relu("features_4")
    net.maxpool("features_5", 3, 2)
    net.conv("features_6", 384, 3, pad=1)
    net.relu("features_7")
    net.conv("features_8", 256, 3, pad=1)
    net.relu("features_9")
    net.conv("features_10", 256, 3, pad=1)
    net.relu("features_11")
    net.maxpool("features_12", 3, 2)
    net.dropout("classifier_0", 0.5)
    net.dense("classifier_1", 4096)
    net.relu("classifier_2")
    net.dropout("classifier_3", 0.5)
    net.dense("classifier_4", 4096)
    net.relu("classifier_5")
    net.dense("classifier_6", 1000)
    return net, 61_100_840


def vgg16():
    net = Net("vgg16", """
VGG-16 (configuration D of Simonyan and Zisserman, "Very deep convolutional networks for
large-scale image recognition", ICLR 2015) as torchvision.models.vgg16 defines it: thirteen
3x3 convolutions with bias and ReLU, five 2x2 max pools, and three dense layers with dropout,
for 3x224x224 images and 1000 ImageNet classes. torchvision's AdaptiveAvgPool2d((7, 7)) is
omitted: at 224x224 input the features are already 512x7x7, so it is the identity.
138,357,544 trainable parameters. Generated by generate.py; do not edit by hand.
""")
    index = 0
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            net.maxpool(f"features_{index}", 2, 2)
            index += 1
        else:
            net.conv(f"features_{index}", v, 3, pad=1)
            net.relu(f"features_{index + 1}")
            index += 2
    net.dense("classifier_0", 4096)
    net.relu("classifier_1")
    net.dropout("classifier_2", 0.5)
    net.dense("classifier_3", 4096)
    net.relu("classifier_4")
    net.dropout("classifier_5", 0.5)
    net.dense("classifier_6", 1000)
    return net, 138_357_544


def resnet18():
    net = Net("resnet18", """
ResNet-18 (He, Zhang, Ren and Sun, "Deep residual learning for image recognition", CVPR
2016) as torchvision.models.resnet18 defines it: a 7x7/2 convolution and a 3x3/2 max pool,
four stages of two basic blocks (64, 128, 256, 512 channels), global average pooling and a
1000-way dense layer, for 3x224x224 images. Convolutions have no bias and are followed by
batch norm; where a stage starts with stride 2 the shortcut is a 1x1 stride-2 convolution
with batch norm (layerN.0.downsample). torchvision's one ReLU module per block is written as
two relu layers: layerN_B_relu after bn1, and layerN_B_out after the residual add.
11,689,512 trainable parameters. Generated by generate.py; do not edit by hand.
""")
    net.conv("conv1", 64, 7, stride=2, pad=3, bias=False)
    net.batchnorm("bn1")
    net.relu("relu")
    x = net.maxpool("maxpool", 3, 2, pad=1)
    channels = 64
    for stage, width in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            p = f"layer{stage}_{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            net.blank()
            net.conv(f"{p}_conv1", width, 3, stride=stride, pad=1, bias=False, frm=x)
            net.batchnorm(f"{p}_bn1")
            net.relu(f"{p}_relu")
            net.conv(f"{p}_conv2", width, 3, pad=1, bias=False)
            residual = net.batchnorm(f"{p}_bn2")
            shortcut = x
            if stride != 1 or channels != width:
                net.conv(f"{p}_downsample_0", width, 1, stride=stride, bias=False, frm=x)
                shortcut = net.batchnorm(f"{p}_downsample_1")
            net.add(f"{p}_add", [residual, shortcut])
            x = net.relu(f"{p}_out")
            channels = width
    net.blank()
    net.global_avgpool("avgpool")
    net.dense("fc", 1000)
    return net, 11_689_512


def googlenet():
    net = Net("googlenet", """
GoogLeNet (Szegedy et al., "Going deeper with convolutions", CVPR 2015) as
torchvision.models.googlenet defines it, without the auxiliary classifiers (aux_logits=False,
as at inference), for 3x224x224 images and 1000 ImageNet classes. Every convolution is
torchvision's BasicConv2d: conv without bias, batch norm with eps=0.001, ReLU. As in
torchvision, branch 3 of every inception module uses a 3x3 convolution where the paper has
5x5, there is no LRN, and all max pools round up (ceil_mode). torchvision's transform_input
(a fixed per-channel rescaling applied to the input when pretrained weights are loaded) is
not part of the network here: apply it to the input if needed.
6,624,904 trainable parameters. Generated by generate.py; do not edit by hand.
""")

    def basic(name, filters, size, pad=0, stride=1, frm=None):
        net.conv(f"{name}_conv", filters, size, stride=stride, pad=pad, bias=False, frm=frm)
        net.batchnorm(f"{name}_bn", eps=0.001)
        return net.relu(f"{name}_relu")

    def inception(name, x, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        net.blank()
        net.comment(f"{name}: {ch1x1} + {ch3x3red}->{ch3x3} + {ch5x5red}->{ch5x5} + pool->{pool_proj}")
        b1 = basic(f"{name}_branch1", ch1x1, 1, frm=x)
        basic(f"{name}_branch2_0", ch3x3red, 1, frm=x)
        b2 = basic(f"{name}_branch2_1", ch3x3, 3, pad=1)
        basic(f"{name}_branch3_0", ch5x5red, 1, frm=x)
        b3 = basic(f"{name}_branch3_1", ch5x5, 3, pad=1)
        net.maxpool(f"{name}_branch4_0", 3, 1, pad=1, ceil_mode=True, frm=x)
        b4 = basic(f"{name}_branch4_1", pool_proj, 1)
        return net.concat(f"{name}_output", [b1, b2, b3, b4])

    basic("conv1", 64, 7, stride=2, pad=3)
    net.maxpool("maxpool1", 3, 2, ceil_mode=True)
    basic("conv2", 64, 1)
    basic("conv3", 192, 3, pad=1)
    x = net.maxpool("maxpool2", 3, 2, ceil_mode=True)
    x = inception("inception3a", x, 64, 96, 128, 16, 32, 32)
    x = inception("inception3b", x, 128, 128, 192, 32, 96, 64)
    net.blank()
    x = net.maxpool("maxpool3", 3, 2, ceil_mode=True)
    x = inception("inception4a", x, 192, 96, 208, 16, 48, 64)
    x = inception("inception4b", x, 160, 112, 224, 24, 64, 64)
    x = inception("inception4c", x, 128, 128, 256, 24, 64, 64)
    x = inception("inception4d", x, 112, 144, 288, 32, 64, 64)
    x = inception("inception4e", x, 256, 160, 320, 32, 128, 128)
    net.blank()
    x = net.maxpool("maxpool4", 2, 2, ceil_mode=True)
    x = inception("inception5a", x, 256, 160, 320, 32, 128, 128)
    x = inception("inception5b", x, 384, 192, 384, 48, 128, 128)
    net.blank()
    net.global_avgpool("avgpool")
    net.dropout("dropout", 0.2)
    net.dense("fc", 1000)
    return net, 6_624_904


def densenet121():
    growth, bn_size, blocks = 32, 4, [6, 12, 24, 16]
    net = Net("densenet121", """
DenseNet-121 (Huang, Liu, van der Maaten and Weinberger, "Densely connected convolutional
networks", CVPR 2017) as torchvision.models.densenet121 defines it, for 3x224x224 images and
1000 ImageNet classes: growth rate 32, dense blocks of 6, 12, 24 and 16 layers, bottleneck
width 4x32 = 128, 64 initial features (7x7/2 convolution, batch norm, ReLU, 3x3/2 max pool),
transitions halving the channels (BN, ReLU, 1x1 convolution, 2x2 average pool), and a final
batch norm, ReLU, global average pooling and 1000-way dense layer. Convolutions have no bias.
torchvision concatenates all earlier features at the start of each dense layer; here each
layer's 32 new channels are appended to the running concatenation (features_denseblockB_catL),
which gives the same values.
7,978,856 trainable parameters. Generated by generate.py; do not edit by hand.
""")
    net.conv("features_conv0", 64, 7, stride=2, pad=3, bias=False)
    net.batchnorm("features_norm0")
    net.relu("features_relu0")
    x = net.maxpool("features_pool0", 3, 2, pad=1)
    channels = 64
    for b, layers in enumerate(blocks, start=1):
        for i in range(1, layers + 1):
            p = f"features_denseblock{b}_denselayer{i}"
            net.blank()
            net.batchnorm(f"{p}_norm1", frm=x)
            net.relu(f"{p}_relu1")
            net.conv(f"{p}_conv1", bn_size * growth, 1, bias=False)
            net.batchnorm(f"{p}_norm2")
            net.relu(f"{p}_relu2")
            new = net.conv(f"{p}_conv2", growth, 3, pad=1, bias=False)
            x = net.concat(f"features_denseblock{b}_cat{i}", [x, new])
            channels += growth
        if b < len(blocks):
            p = f"features_transition{b}"
            channels //= 2
            net.blank()
            net.batchnorm(f"{p}_norm")
            net.relu(f"{p}_relu")
            net.conv(f"{p}_conv", channels, 1, bias=False)
            x = net.avgpool(f"{p}_pool", 2, 2)
    net.blank()
    net.batchnorm("features_norm5")
    net.relu("features_relu5")
    net.global_avgpool("avgpool")
    net.dense("classifier", 1000)
    return net, 7_978_856


NETWORKS = [alexnet, vgg16, resnet18, googlenet, densenet121]


def main(argv):
    check = "--check" in argv[1:]
    ok = True
    for build in NETWORKS:
        net, expected = build()
        path = os.path.join(HERE, f"{net.name}.net")
        status = "ok" if net.params == expected else f"MISMATCH (torchvision: {expected:,})"
        ok &= net.params == expected
        if check:
            with open(path) as f:
                same = f.read() == net.text()
            ok &= same
            status += "" if same else f"; {net.name}.net differs from the generator's output"
        else:
            with open(path, "w") as f:
                f.write(net.text())
        print(f"{net.name:<12} {net.params:>12,} parameters  {status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
