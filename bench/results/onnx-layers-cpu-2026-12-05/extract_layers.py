"""Cuts every Conv (with the Clip that follows it) out of an exported model into a one-node model of its own, so that
`gpunet run --device cpu --onnx mb00.onnx,mb01.onnx,...` compares each layer with ONNX Runtime in the same harness.
Needs python3-onnx (Debian); a measurement aid, not used by CI.

    /usr/bin/python3 extract_layers.py MODEL.onnx OUTDIR PREFIX
"""
import os
import sys

import onnx
import onnx.utils

src, outdir, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(outdir, exist_ok=True)
graph = onnx.load(src).graph
consumers = {}
for node in graph.node:
    for name in node.input:
        consumers.setdefault(name, []).append(node)
k = 0
for node in graph.node:
    if node.op_type != "Conv":
        continue
    outputs = [node.output[0]]
    after = consumers.get(node.output[0], [])
    if len(after) == 1 and after[0].op_type == "Clip":
        outputs = [after[0].output[0]]
    path = os.path.join(outdir, f"{prefix}{k:02d}.onnx")
    onnx.utils.extract_model(src, path, [node.input[0]], outputs)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    print(os.path.basename(path), node.name, "group", attrs.get("group", 1), "kernel", attrs.get("kernel_shape"), "strides", attrs.get("strides"))
    k += 1
