#!/usr/bin/python3
"""make_checkpoints.py — derives the malformed checkpoints in this folder from good.safetensors
(a real 2-step checkpoint of tiny.cfg written by cnnbench --save). Each file breaks one rule the
reader must enforce; tests/test_malformed.c passes them to cnnbench --load / --resume.
Run from this folder: /usr/bin/python3 make_checkpoints.py"""
import json
import struct

blob = open("good.safetensors", "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
data = blob[8 + n:]


def emit(name, hdr, body=data, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(hdr).encode()
    open(f"ckpt-{name}.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + body)


def edit(fn):
    h = json.loads(json.dumps(header))
    fn(h)
    return h


open("ckpt-empty.safetensors", "wb").write(b"")
open("ckpt-short-length.safetensors", "wb").write(b"\x10\x00\x00")
open("ckpt-header-past-end.safetensors", "wb").write(struct.pack("<Q", 1 << 40) + b"{}")
open("ckpt-truncated.safetensors", "wb").write(blob[: len(blob) - 100])
emit("not-json", None, raw_header=b"{\"conv1.weight\": [1, 2,,]}     ")
emit("json-array", None, raw_header=b"[1, 2, 3]")
emit("wrong-dtype", edit(lambda h: h["conv1.weight"].update(dtype="F16")))
emit("wrong-shape", edit(lambda h: h["fc1.weight"].update(shape=[8, 10])))
emit("negative-shape", edit(lambda h: h["fc1.bias"].update(shape=[-10])))
emit("offsets-past-end", edit(lambda h: h["fc1.bias"].update(data_offsets=[len(data), len(data) + 40])))
emit("offsets-reversed", edit(lambda h: h["fc1.bias"].update(data_offsets=[40, 0])))
emit("overlap", edit(lambda h: h["conv1.bias"].update(data_offsets=h["conv1.weight"]["data_offsets"][:1] + [h["conv1.weight"]["data_offsets"][0] + 8])))
emit("missing-tensor", edit(lambda h: h.pop("fc1.bias")))
emit("extra-tensor", edit(lambda h: h.update({"fc9.weight": dict(h["fc1.bias"])})))
emit("partial-optimizer", edit(lambda h: h.pop("optimizer.fc1.bias.momentum_buffer")))
emit("metadata-number", edit(lambda h: h["__metadata__"].update(global_step=2)))
emit("metadata-garbage", edit(lambda h: h["__metadata__"].update(epoch="1e9")))
emit("partial-position", edit(lambda h: h["__metadata__"].pop("rng_inc")))
emit("wrong-model", edit(lambda h: h["__metadata__"].update(model="lenet5")))
emit("bad-position", edit(lambda h: h["__metadata__"].update(step_in_epoch="1")))
emit("missing-offsets", edit(lambda h: h["conv1.weight"].pop("data_offsets")))
print("written")
