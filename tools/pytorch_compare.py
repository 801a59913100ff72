#!/usr/bin/env python3
"""pytorch_compare.py — trains one of cnnbench's five networks in PyTorch on CPU, the way cnnbench
does (same Fashion-MNIST data, batch, optimizer, lr, normalization, threads), and measures training
and inference images/s, so cnnbench's figures have a reference measured on the same machine.

What is timed, to match cnnbench's training loop (harness/engine/train.c):
  * train: per epoch, the whole loop over the steps — gather the shuffled batch from the in-memory
    tensor, forward, cross-entropy loss, zero_grad, backward, optimizer step, read the loss and the
    correct count back. The shuffle (torch.randperm) happens before the clock starts, as in
    cnnbench.
    Images/s per epoch; the median over the epochs is the figure quoted.
  * infer: after each epoch, one pass over the test set at eval batch 1000 under torch.no_grad()
    (forward, loss, predictions); images/s per pass, median over the passes. --infer-repeats adds
    more passes after the last epoch.
No DataLoader, no torchvision: the gz IDX files are read with gzip + numpy and normalized once.

Example:
  python3 tools/pytorch_compare.py --model simplecnn --epochs 3 --train-limit 20000 --json out.json
"""
import argparse
import gzip
import json
import os
import platform
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(ROOT, "models")
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"

# Parameter counts stated in the model files (and checked there against torch.nn); a network built
# here that does not match is a bug in this script, so it refuses to run.
EXPECTED_PARAMS = {"simplecnn": 421642, "cnn": 28938, "network": 32998, "network3": 22654,
                   "lenet5": 61707}

# Environment variables that change what a CPU run measures; recorded with every result.
ENV_KEYS = ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
            "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX", "LD_PRELOAD", "KMP_AFFINITY", "OMP_PROC_BIND",
            "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def build_network(name):
    """The five networks exactly as models/<name>.cfg describes them (PyTorch default init)."""
    if name == "simplecnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1568, 10))
    if name == "network":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 12, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(192, 120), nn.ReLU(), nn.Linear(120, 60), nn.ReLU(),
            nn.Linear(60, 10))
    if name == "network3":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 12, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(12, 24, 2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(96, 120), nn.ReLU(), nn.Linear(120, 60), nn.ReLU(),
            nn.Linear(60, 10))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.PReLU(num_parameters=1, init=0.25),
            nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
    raise SystemExit(f"pytorch_compare: unknown model '{name}' "
                     f"(known: {', '.join(EXPECTED_PARAMS)})")


def read_net_section(path):
    """The [net] section of a cnnbench model file as a dict of strings."""
    net, section = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                continue
            if section == "net" and "=" in line:
                key, value = line.split("=", 1)
                net[key.strip()] = value.strip()
    return net


def training_settings(model, args):
    """Batch, optimizer and normalization from models/<model>.cfg, as cnnbench reads them."""
    net = read_net_section(os.path.join(MODELS_DIR, model + ".cfg"))
    s = {
        "batch": args.batch or int(net["batch"]),
        "epochs": args.epochs or int(net.get("epochs", 10)),
        "optimizer": net.get("optimizer", "sgd"),
        "lr": args.lr or float(net["lr"]),
        "momentum": float(net.get("momentum", 0)),
        "weight_decay": float(net.get("weight_decay", 0)),
        "beta1": float(net.get("beta1", 0.9)),
        "beta2": float(net.get("beta2", 0.999)),
        "eps": float(net.get("eps", 1e-8)),
        "normalize": None,
    }
    norm = net.get("normalize", "none")
    if norm != "none":
        mean, std = (float(v) for v in norm.split(","))
        s["normalize"] = (mean, std)
    return s


def read_idx(path, want_magic):
    """One gzip'd IDX file as a uint8 numpy array, with its header checked."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SystemExit(f"{path}: truncated IDX header")
    magic, count = struct.unpack(">II", raw[:8])
    if magic != want_magic:
        raise SystemExit(f"{path}: magic {magic:#x}, expected {want_magic:#x}")
    dims = [count]
    if magic == 0x803:
        dims += list(struct.unpack(">II", raw[8:16]))
    header = 8 + 4 * (len(dims) - 1)
    need = header + int(np.prod(dims))
    if len(raw) != need:
        raise SystemExit(f"{path}: {len(raw)} bytes, header says {need}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_split(data_dir, prefix, limit, normalize):
    """Images as one float32 [N,1,28,28] tensor (p/255, then (x-mean)/std as cnnbench and
    torchvision's ToTensor+Normalize do) and labels as int64 [N]."""
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"), 0x803)
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"), 0x801)
    if len(images) != len(labels):
        raise SystemExit(f"{data_dir}: {len(images)} {prefix} images but {len(labels)} labels")
    if limit:
        images, labels = images[:limit], labels[:limit]
    # A 256-entry table, computed in float32 in the same order as cnnbench's (data.c).
    p = np.arange(256, dtype=np.float32)
    table = p / np.float32(255.0)
    if normalize:
        table = (table - np.float32(normalize[0])) / np.float32(normalize[1])
    x = torch.from_numpy(table[images].reshape(-1, 1, images.shape[1], images.shape[2]).copy())
    y = torch.from_numpy(labels.astype(np.int64))
    return x.contiguous(), y


def summary(values):
    med = statistics.median(values)
    return {"min": min(values), "median": med, "max": max(values),
            "mad": statistics.median(abs(v - med) for v in values), "samples": len(values),
            "values": values}


def evaluate(model, x, y, eval_batch):
    """One timed pass over the test set: (loss, accuracy, seconds)."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        start = time.perf_counter()
        for first in range(0, len(x), eval_batch):
            xb, yb = x[first:first + eval_batch], y[first:first + eval_batch]
            out = model(xb)
            loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
        seconds = time.perf_counter() - start
    model.train()
    return loss_sum / len(x), correct / len(x), seconds


def cpu_capability():
    """The SIMD level ATen dispatches to (torch >= 2.0 can say; older ones cannot)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        return "not reported by this torch"


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="simplecnn", choices=sorted(EXPECTED_PARAMS))
    ap.add_argument("--epochs", type=int, default=0, help="default: the model file's")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--train-limit", type=int, default=0, help="use the first N training images")
    ap.add_argument("--test-limit", type=int, default=0, help="use the first N test images")
    ap.add_argument("--batch", type=int, default=0, help="default: the model file's")
    ap.add_argument("--lr", type=float, default=0.0, help="default: the model file's")
    ap.add_argument("--eval-batch", type=int, default=1000)
    ap.add_argument("--infer-repeats", type=int, default=0,
                    help="extra timed test-set passes after the last epoch (default 0)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", default=DEFAULT_DATA, help="Fashion-MNIST directory (gz IDX)")
    ap.add_argument("--label", default="", help="a name for this contender in the JSON")
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    s = training_settings(args.model, args)
    x_train, y_train = load_split(args.data, "train", args.train_limit, s["normalize"])
    x_test, y_test = load_split(args.data, "t10k", args.test_limit, s["normalize"])

    model = build_network(args.model)
    n_params = sum(p.numel() for p in model.parameters())
    if n_params != EXPECTED_PARAMS[args.model]:
        raise SystemExit(f"pytorch_compare: {args.model} has {n_params} parameters here, the "
                         f"model file says {EXPECTED_PARAMS[args.model]}")
    if s["optimizer"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=s["lr"], betas=(s["beta1"], s["beta2"]),
                               eps=s["eps"], weight_decay=s["weight_decay"])
        opt_text = f"adam lr {s['lr']:g}"
    else:
        opt = torch.optim.SGD(model.parameters(), lr=s["lr"], momentum=s["momentum"],
                              weight_decay=s["weight_decay"])
        opt_text = f"sgd lr {s['lr']:g} momentum {s['momentum']:g}"

    env = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
    print(f"pytorch_compare: torch {torch.__version__} ({sys.executable}), "
          f"threads {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
          f"cpu capability {cpu_capability()}")
    print(f"  env: {' '.join(f'{k}={v}' for k, v in env.items()) or '(none of note)'}")
    norm = s["normalize"]
    print(f"model {args.model} ({n_params} parameters); data {len(x_train)} training / "
          f"{len(x_test)} test images ({args.data}); {opt_text}, batch {s['batch']}, "
          f"{s['epochs']} epochs, normalize {norm if norm else 'none'}")

    n, batch = len(x_train), min(s["batch"], len(x_train))
    steps = (n + batch - 1) // batch  # the last, partial batch is trained too, as in cnnbench
    gen = torch.Generator().manual_seed(args.seed)
    epochs, train_ips, infer_ips = [], [], []
    run_start = time.perf_counter()
    for e in range(1, s["epochs"] + 1):
        order = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        start = time.perf_counter()
        for step in range(steps):
            idx = order[step * batch:(step + 1) * batch]
            xb, yb = x_train[idx], y_train[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        train_s = time.perf_counter() - start
        test_loss, test_acc, eval_s = evaluate(model, x_test, y_test, args.eval_batch)
        ips, iips = n / train_s, len(x_test) / eval_s
        train_ips.append(ips)
        infer_ips.append(iips)
        epochs.append({"epoch": e, "steps": steps, "train_images": n,
                       "train_loss": loss_sum / n, "train_accuracy": correct / n,
                       "test_loss": test_loss, "test_accuracy": test_acc,
                       "train_seconds": train_s, "eval_seconds": eval_s,
                       "train_images_per_s": ips, "infer_images_per_s": iips})
        print(f"epoch {e:2d}  train loss {loss_sum / n:.4f}  acc {100 * correct / n:6.2f}%  |  "
              f"test loss {test_loss:.4f}  acc {100 * test_acc:6.2f}%  |  {ips:7.0f} train img/s"
              f"  {iips:7.0f} infer img/s  ({train_s + eval_s:.1f} s)", flush=True)
    for _ in range(args.infer_repeats):
        _, _, eval_s = evaluate(model, x_test, y_test, args.eval_batch)
        infer_ips.append(len(x_test) / eval_s)

    tr, inf = summary(train_ips), summary(infer_ips)
    print(f"result: {args.model} on torch {torch.__version__}: test accuracy "
          f"{100 * epochs[-1]['test_accuracy']:.2f}%; train {tr['median']:.0f} img/s, "
          f"infer {inf['median']:.0f} img/s (medians over {tr['samples']} epochs / "
          f"{inf['samples']} passes)")
    if args.json:
        result = {
            "tool": "pytorch_compare", "label": args.label,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command_line": sys.argv,
            "python": sys.executable, "python_version": platform.python_version(),
            "torch": {"version": torch.__version__, "path": os.path.dirname(torch.__file__),
                      "config": torch.__config__.show(),
                      "parallel_info": torch.__config__.parallel_info(),
                      "threads": torch.get_num_threads(),
                      "interop_threads": torch.get_num_interop_threads()},
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                        "loadavg_at_end": os.getloadavg()},
            "environment": env,
            "model": {"name": args.model, "parameters": n_params},
            "dataset": {"path": args.data, "train": len(x_train), "test": len(x_test)},
            "settings": {"batch": batch, "eval_batch": args.eval_batch, "epochs": s["epochs"],
                         "optimizer": s["optimizer"], "lr": s["lr"], "momentum": s["momentum"],
                         "normalize": list(norm) if norm else None, "seed": args.seed},
            "epochs": epochs,
            "throughput": {"train_images_per_s": tr, "infer_images_per_s": inf,
                           "note": "per-epoch samples; training excludes evaluation, data in "
                                   "memory; same timed region as cnnbench"},
            "wall_time_s": time.perf_counter() - run_start,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        print(f"results: {args.json}")


if __name__ == "__main__":
    main()
