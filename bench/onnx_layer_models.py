#!/usr/bin/python3
"""Splits a model's convolutions into one-layer ONNX models, to time each layer against ONNX Runtime on its own.

    /usr/bin/python3 bench/onnx_layer_models.py MODEL.onnx OUT_DIR
    dotnet run -c Release --project bench -- run --device cpu --onnx $(ls -d OUT_DIR/*/ | sed 's|$|model.onnx|' | paste -sd,)

Each distinct Conv (input channels, output channels, input size, kernel, stride, groups, padding) becomes OUT_DIR/<name>/
model.onnx: that Conv with random weights (He-scaled, seed 0) and a bias, followed by the activation the model applies
after it (or after its BatchNormalization) when that is a Relu or a Clip (ReLU6), at batch 1. Needs only Debian's python3-onnx (and numpy), no PyTorch.
A layer's time here includes copying its input in and its output out, as run --onnx does for whole models.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference


def main(model_path, out_dir):
    model = shape_inference.infer_shapes(onnx.load(model_path))
    graph = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(graph.value_info) + list(graph.input) + list(graph.output)}
    weights = {i.name: list(i.dims) for i in graph.initializer}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rng = np.random.default_rng(0)
    stem = os.path.splitext(os.path.basename(os.path.dirname(os.path.abspath(model_path))))[0] or "model"
    made = set()
    for node in graph.node:
        if node.op_type != "Conv" or node.input[0] not in shapes or node.input[1] not in weights:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x = shapes[node.input[0]]
        co, cg, kh, kw = weights[node.input[1]]
        groups = attrs.get("group", 1)
        strides = list(attrs.get("strides", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        # The activation after the Conv, or after the BatchNormalization that follows it (folded into the Conv when loaded).
        nexts = consumers.get(node.output[0], [])
        if len(nexts) == 1 and nexts[0].op_type == "BatchNormalization":
            nexts = consumers.get(nexts[0].output[0], [])
        after = [c.op_type for c in nexts]
        act = "Relu" if after == ["Relu"] else "Clip" if after == ["Clip"] else None
        name = f"{stem}_{x[1]}to{co}_{x[2]}x{x[3]}_k{kh}x{kw}_s{strides[0]}_g{groups}_p{'-'.join(map(str, pads))}" + (f"_{act.lower()}" if act else "")
        if name in made:
            continue
        made.add(name)
        w = (rng.standard_normal((co, cg, kh, kw)) * np.sqrt(2.0 / (cg * kh * kw))).astype(np.float32)
        b = (rng.standard_normal(co) * 0.1).astype(np.float32)
        inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
        conv_out = "y" if act is None else "conv"
        nodes = [helper.make_node("Conv", ["x", "W", "B"], [conv_out], kernel_shape=[kh, kw], strides=strides, pads=pads,
                                  group=groups, dilations=list(attrs.get("dilations", [1, 1])))]
        if act == "Relu":
            nodes.append(helper.make_node("Relu", [conv_out], ["y"]))
        elif act == "Clip":
            inits += [numpy_helper.from_array(np.array(0, np.float32), "low"), numpy_helper.from_array(np.array(6, np.float32), "high")]
            nodes.append(helper.make_node("Clip", [conv_out, "low", "high"], ["y"]))
        oh = (x[2] + pads[0] + pads[2] - kh) // strides[0] + 1
        ow = (x[3] + pads[1] + pads[3] - kw) // strides[1] + 1
        layer = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] + x[1:])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, co, oh, ow])], inits)
        m = helper.make_model(layer, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
        onnx.save(m, os.path.join(out_dir, name, "model.onnx"))
    print(f"{len(made)} layer models in {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
