#!/usr/bin/python3
"""torch_roundtrip.py — proves cnnbench checkpoints and PyTorch state_dicts are interchangeable.

Builds the network of a cnnbench model file (models/*.cfg) as a torch.nn.Module whose state_dict
keys are cnnbench's tensor names (conv1.weight, fc2.bias, prelu1.weight, ...), and reads / writes
the safetensors format by hand (json + torch.frombuffer: Debian has no safetensors package).

  torch_roundtrip.py make MODEL.cfg OUT.safetensors [--seed N]
      a fresh PyTorch-initialized network's state_dict, written as safetensors
  torch_roundtrip.py verify MODEL.cfg WEIGHTS.safetensors LOGITS.safetensors [--tol X]
      load WEIGHTS into the PyTorch network, run it on the "inputs" tensor of LOGITS (written by
      `cnnbench --dump-logits`) and compare with its "logits"; exit 0 when the relative L2 error
      is below tol (default 1e-5), 1 otherwise.
"""
import argparse
import json
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def parse_cfg(path):
    """[section] key = value lines, '#' comments; returns [(section, {key: value}), ...]."""
    sections = []
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                sections.append((line[1:-1].strip(), {}))
            elif "=" in line and sections:
                k, v = line.split("=", 1)
                sections[-1][1][k.strip()] = v.strip()
    return sections


def pair(opts, key, default):
    if key in opts:
        v = int(opts[key])
        return v, v
    if key + "_h" in opts:
        return int(opts[key + "_h"]), int(opts[key + "_w"])
    return default


class CfgNet(nn.Module):
    """The network of a model file; parameters registered under cnnbench's layer names."""

    def __init__(self, cfg_path):
        super().__init__()
        secs = parse_cfg(cfg_path)
        net = dict(secs[0][1]) if secs and secs[0][0] == "net" else {}
        c = int(net.get("channels", 1))
        h = int(net.get("height", 28))
        w = int(net.get("width", 28))
        self.in_shape = (c, h, w)
        self.normalize = net.get("normalize", "none")
        self.steps = []
        ordinal = {}
        for kind, o in secs[1:]:
            ordinal[kind] = ordinal.get(kind, 0) + 1
            prefix = {"conv": "conv", "linear": "fc", "prelu": "prelu"}.get(kind)
            name = o.get("name", f"{prefix}{ordinal[kind]}" if prefix else None)
            bias = int(o.get("bias", 1)) == 1
            if kind == "conv":
                k = pair(o, "size", None)
                st = pair(o, "stride", (1, 1))
                pd = pair(o, "pad", (0, 0))
                mod = nn.Conv2d(c, int(o["filters"]), k, stride=st, padding=pd, bias=bias)
                setattr(self, name, mod)
                self.steps.append(mod)
                c = int(o["filters"])
                h = (h + 2 * pd[0] - k[0]) // st[0] + 1
                w = (w + 2 * pd[1] - k[1]) // st[1] + 1
            elif kind in ("maxpool", "avgpool"):
                k = pair(o, "size", None)
                st = pair(o, "stride", k)
                pd = pair(o, "pad", (0, 0))
                mod = (nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(k, st, pd)
                self.steps.append(mod)
                h = (h + 2 * pd[0] - k[0]) // st[0] + 1
                w = (w + 2 * pd[1] - k[1]) // st[1] + 1
            elif kind == "relu":
                self.steps.append(F.relu)
            elif kind == "tanh":
                self.steps.append(torch.tanh)
            elif kind == "sigmoid":
                self.steps.append(torch.sigmoid)
            elif kind == "prelu":
                mod = nn.PReLU(init=float(o.get("init", 0.25)))
                setattr(self, name, mod)
                self.steps.append(mod)
            elif kind == "flatten":
                self.steps.append(lambda x: torch.flatten(x, 1))
                c, h, w = c * h * w, 1, 1
            elif kind == "linear":
                mod = nn.Linear(c * h * w, int(o["outputs"]), bias=bias)
                setattr(self, name, mod)
                self.steps.append(mod)
                c, h, w = int(o["outputs"]), 1, 1
            else:
                raise SystemExit(f"{cfg_path}: section [{kind}] is not known to this script")

    def forward(self, x):
        for f in self.steps:
            x = f(x)
        return x


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out, meta = {}, header.pop("__metadata__", {})
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit(f"{path}: {name}: dtype {e['dtype']} (expected F32)")
        b, en = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:en]), dtype=torch.float32)
        out[name] = t.reshape(e["shape"]) if e["shape"] else t.reshape(())
    return out, meta


def write_safetensors(path, tensors, meta):
    header, chunks, at = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("cfg")
    mk.add_argument("out")
    mk.add_argument("--seed", type=int, default=1)
    vf = sub.add_parser("verify")
    vf.add_argument("cfg")
    vf.add_argument("weights")
    vf.add_argument("logits")
    vf.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    torch.set_num_threads(1)

    if a.cmd == "make":
        torch.manual_seed(a.seed)
        net = CfgNet(a.cfg)
        write_safetensors(a.out, net.state_dict(), {"producer": "torch " + torch.__version__})
        print(f"wrote {len(net.state_dict())} tensors of a fresh PyTorch network to {a.out}")
        return 0

    net = CfgNet(a.cfg)
    weights, _ = read_safetensors(a.weights)
    model_keys = set(net.state_dict().keys())
    params = {k: v for k, v in weights.items() if not k.startswith("optimizer.")}
    missing, unexpected = net.load_state_dict(params, strict=True), None  # strict: exact key set
    del missing, unexpected
    dump, _ = read_safetensors(a.logits)
    x, ref = dump["inputs"], dump["logits"]
    with torch.no_grad():
        got = net(x)
    err = (got.double() - ref.double()).norm() / ref.double().norm()
    worst = (got - ref).abs().max().item()
    print(f"{len(model_keys)} tensors, {x.shape[0]} images: relative L2 error {err.item():.3e}, "
          f"largest |difference| {worst:.3e} (tolerance {a.tol:g})")
    if not err.item() < a.tol:
        print("first rows (pytorch / cnnbench):", got[:2].tolist(), ref[:2].tolist())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
