import onnx, onnx.utils, sys
src='/work/main/tests/GpuNet.Onnx.Tests/bin/Release/net10.0/Models/real_mobilenet_v2/model.onnx'
m=onnx.load(src)
outs=[n.output[0] for n in m.graph.node]
# find last node output of each features.k
import re
last={}
for n in m.graph.node:
    mm=re.match(r'/features/features\.(\d+)/',n.name)
    if mm: last[int(mm.group(1))]=n.output[0]
    # residual Add nodes
for k in sorted(last): print(k,last[k])
for k in [1,3,6,10,13,16,18]:
    onnx.utils.extract_model(src, f'mnv2_f{k:02d}.onnx', ['input_0'], [last[k]])
