"""Converts the pretrained face models into the one graph format the emotion service runs.

Each model becomes `<name>.graph.json` (inputs, outputs, and a list of operators in TFLite terms:
CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PRELU, PAD, MAX_POOL_2D, RESHAPE, CONCATENATION, MEAN,
SOFTMAX) and `<name>.safetensors` (every constant tensor as float32, named `t<id>`).

Layouts follow TFLite: activations NHWC, convolution weights OHWI, depthwise weights 1HWC.
float16 weights behind DEQUANTIZE operators are folded to float32 constants; Keras batch
normalisation is folded into the convolution before it.

usage: convert.py tflite MODEL.tflite OUT_PREFIX
       convert.py keras MODEL.hdf5 OUT_PREFIX
"""
import json
import struct
import sys

import numpy as np


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for blob in blobs:
            out.write(blob)


class Graph:
    def __init__(self):
        self.shapes, self.constants, self.ops = {}, {}, []
        self.inputs, self.outputs, self.output_names = [], [], []
        self.next_id = 0

    def tensor(self, shape, value=None, tid=None):
        if tid is None:
            tid = self.next_id
            self.next_id += 1
        self.next_id = max(self.next_id, tid + 1)
        self.shapes[tid] = [int(d) for d in shape]
        if value is not None:
            self.constants[tid] = np.asarray(value, dtype=np.float32)
        return tid

    def save(self, prefix):
        graph = {
            "inputs": self.inputs,
            "outputs": self.outputs,
            "output_names": self.output_names,
            "shapes": {str(k): v for k, v in self.shapes.items()},
            "ops": self.ops,
        }
        with open(prefix + ".graph.json", "w") as out:
            json.dump(graph, out, indent=0)
        write_safetensors(prefix + ".safetensors", {f"t{k}": v for k, v in self.constants.items()})


ACTIVATIONS = {0: "NONE", 1: "RELU", 3: "RELU6"}
PADDINGS = {0: "SAME", 1: "VALID"}


def from_tflite(path):
    import tflite

    model = tflite.Model.GetRootAsModel(open(path, "rb").read(), 0)
    sub = model.Subgraphs(0)
    names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    dtypes = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.INT32: np.int32}
    g = Graph()

    def constant(i):
        t = sub.Tensors(i)
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        return np.frombuffer(data.tobytes(), dtype=dtypes[t.Type()]).reshape(t.ShapeAsNumpy())

    for i in range(sub.TensorsLength()):
        value = constant(i)
        g.tensor(sub.Tensors(i).ShapeAsNumpy().tolist() or [1], None if value is None else value.astype(np.float32), tid=i)
    g.inputs = [int(sub.Inputs(i)) for i in range(sub.InputsLength())]
    g.outputs = [int(sub.Outputs(i)) for i in range(sub.OutputsLength())]
    g.output_names = [sub.Tensors(i).Name().decode() for i in g.outputs]

    def options(op, cls):
        table = op.BuiltinOptions()
        opt = cls()
        opt.Init(table.Bytes, table.Pos)
        return opt

    for n in range(sub.OperatorsLength()):
        op = sub.Operators(n)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(i) for i in op.InputsAsNumpy() if i >= 0]
        outs = [int(i) for i in op.OutputsAsNumpy()]
        entry = {"op": name, "inputs": ins, "outputs": outs}
        if name == "DEQUANTIZE":
            g.constants[outs[0]] = g.constants.pop(ins[0]).astype(np.float32)
            continue
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            cls = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
            o = options(op, cls)
            assert o.DilationHFactor() == 1 and o.DilationWFactor() == 1, "dilation unsupported"
            if name == "DEPTHWISE_CONV_2D":
                assert o.DepthMultiplier() == 1, "depth multiplier unsupported"
            entry.update(stride=[o.StrideH(), o.StrideW()], padding=PADDINGS[o.Padding()],
                         activation=ACTIVATIONS[o.FusedActivationFunction()])
        elif name == "MAX_POOL_2D":
            o = options(op, tflite.Pool2DOptions)
            entry.update(stride=[o.StrideH(), o.StrideW()], padding=PADDINGS[o.Padding()],
                         filter=[o.FilterHeight(), o.FilterWidth()], activation=ACTIVATIONS[o.FusedActivationFunction()])
        elif name == "ADD":
            entry.update(activation=ACTIVATIONS[options(op, tflite.AddOptions).FusedActivationFunction()])
        elif name == "CONCATENATION":
            o = options(op, tflite.ConcatenationOptions)
            entry.update(axis=o.Axis(), activation=ACTIVATIONS[o.FusedActivationFunction()])
        elif name == "RESHAPE":
            entry.update(shape=g.shapes[outs[0]])
            entry["inputs"] = ins[:1]
        elif name == "PAD":
            entry.update(paddings=g.constants[ins[1]].astype(int).tolist())
            entry["inputs"] = ins[:1]
        elif name not in ("RELU", "PRELU"):
            raise SystemExit(f"unsupported operator {name} in {path}")
        g.ops.append(entry)
    return g


def from_keras(path):
    import h5py

    f = h5py.File(path, "r")
    config = json.loads(f.attrs["model_config"])
    weights = f["model_weights"]

    def params(layer):
        found = {}
        if layer in weights:
            weights[layer].visititems(lambda n, obj: found.__setitem__(n.split("/")[-1].split(":")[0], np.array(obj)) if hasattr(obj, "shape") else None)
        return found

    g = Graph()
    out_of = {}       # layer name -> tensor id
    conv_of = {}      # layer name -> the conv op whose output it is (for folding batch norm)
    for layer in config["config"]["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inbound = [n[0] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        src = [out_of[i] for i in inbound]
        p = params(name)
        if kind == "InputLayer":
            shape = [1 if d is None else d for d in cfg["batch_input_shape"]]
            out_of[name] = g.tensor(shape)
            g.inputs.append(out_of[name])
            continue
        if kind in ("Conv2D", "SeparableConv2D"):
            x = src[0]
            padding = cfg["padding"].upper()
            stride = list(cfg["strides"])
            if kind == "SeparableConv2D":
                dw = p["depthwise_kernel"]  # kh, kw, in, 1
                dw_w = g.tensor([1, dw.shape[0], dw.shape[1], dw.shape[2]], dw[..., 0][None])
                dw_b = g.tensor([dw.shape[2]], np.zeros(dw.shape[2]))
                mid = g.tensor([1, 0, 0, dw.shape[2]])
                g.ops.append({"op": "DEPTHWISE_CONV_2D", "inputs": [x, dw_w, dw_b], "outputs": [mid],
                              "stride": stride, "padding": padding, "activation": "NONE"})
                kernel, x, stride, padding = p["pointwise_kernel"], mid, [1, 1], "VALID"
            else:
                kernel = p["kernel"]
            w = g.tensor([kernel.shape[3], kernel.shape[0], kernel.shape[1], kernel.shape[2]], kernel.transpose(3, 0, 1, 2))
            b = g.tensor([kernel.shape[3]], p.get("bias", np.zeros(kernel.shape[3])))
            y = g.tensor([1, 0, 0, kernel.shape[3]])
            op = {"op": "CONV_2D", "inputs": [x, w, b], "outputs": [y], "stride": stride, "padding": padding,
                  "activation": "RELU" if cfg.get("activation") == "relu" else "NONE"}
            g.ops.append(op)
            out_of[name], conv_of[name] = y, op
        elif kind == "BatchNormalization":
            op = conv_of[inbound[0]]
            assert op["activation"] == "NONE"
            scale = p["gamma"] / np.sqrt(p["moving_variance"] + cfg["epsilon"])
            w, b = op["inputs"][1], op["inputs"][2]
            g.constants[w] = g.constants[w] * scale[:, None, None, None]
            g.constants[b] = (g.constants[b] - p["moving_mean"]) * scale + p["beta"]
            out_of[name], conv_of[name] = out_of[inbound[0]], op
        elif kind == "Activation":
            act = cfg["activation"]
            y = g.tensor([1, 0, 0, 0])
            g.ops.append({"op": {"relu": "RELU", "softmax": "SOFTMAX"}[act], "inputs": src, "outputs": [y]})
            out_of[name] = y
        elif kind == "MaxPooling2D":
            y = g.tensor([1, 0, 0, 0])
            g.ops.append({"op": "MAX_POOL_2D", "inputs": src, "outputs": [y], "stride": list(cfg["strides"]),
                          "padding": cfg["padding"].upper(), "filter": list(cfg["pool_size"]), "activation": "NONE"})
            out_of[name] = y
        elif kind == "Add":
            y = g.tensor([1, 0, 0, 0])
            g.ops.append({"op": "ADD", "inputs": src, "outputs": [y], "activation": "NONE"})
            out_of[name] = y
        elif kind == "GlobalAveragePooling2D":
            y = g.tensor([1, 0])
            g.ops.append({"op": "MEAN", "inputs": src, "outputs": [y], "axes": [1, 2]})
            out_of[name] = y
        else:
            raise SystemExit(f"unsupported Keras layer {kind}")
    last = config["config"]["layers"][-1]["name"]
    g.outputs, g.output_names = [out_of[last]], [last]
    return g


if __name__ == "__main__":
    kind, source, prefix = sys.argv[1:4]
    graph = from_tflite(source) if kind == "tflite" else from_keras(source)
    graph.save(prefix)
    print(f"{prefix}: {len(graph.ops)} operators, {len(graph.constants)} constants")
