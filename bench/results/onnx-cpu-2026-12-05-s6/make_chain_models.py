"""The two 50-node chain models of this directory (per-node host cost): Relu/Neg alternating, and Add(y, x), on [1, 16].
Run with Debian's python3-onnx: /usr/bin/python3 make_chain_models.py"""
import onnx
from onnx import helper, TensorProto

N = 50


def chain(name, make):
    nodes, prev = [], 'x'
    for i in range(N):
        out = f'y{i}' if i < N - 1 else 'y'
        nodes.append(make(i, prev, out))
        prev = out
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 16])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]), f'{name}.onnx')


chain('chain', lambda i, a, y: helper.make_node('Relu' if i % 2 == 0 else 'Neg', [a], [y]))
chain('addchain', lambda i, a, y: helper.make_node('Add', [a, 'x'], [y]))
