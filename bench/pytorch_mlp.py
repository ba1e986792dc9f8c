#!/usr/bin/python3
"""PyTorch reference for dtrain's MLP benchmark on Fashion-MNIST.

Trains the same model as `dtrain train --model mlp --hidden 256,128`: a
784-256-128-10 ReLU MLP, softmax cross-entropy, He (Kaiming normal, fan-in)
weights and zero biases, SGD with momentum (PyTorch's form: v = mu v + g,
w -= lr v), batch 128 per worker, on the Debian package's Fashion-MNIST
(/usr/share/datasets/fashion-mnist, pixels scaled to [0, 1], nothing else).
The training set is reshuffled every epoch with seed + epoch and split across
workers as torch.utils.data.DistributedSampler does (rank r takes every
world-th index of the permutation, so each of 2 ranks trains on 30000
images; the last batch of an epoch is partial, not dropped). Test accuracy is
measured after every epoch on the 10000 test images (under DDP each rank
scores half and the counts are summed).

Modes:
  single  one process, torch.set_num_threads(1) and OpenBLAS on 1 thread.
  ddp     torch.nn.parallel.DistributedDataParallel, gloo backend on
          127.0.0.1, 2 processes (torch.multiprocessing.spawn), 1 thread
          each; gradients are allreduced (averaged) every step.

Timing:
  train_s      per epoch: the training loop alone (no evaluation; the
               epoch's shuffle included), from a barrier before the first
               step to the last optimizer step; under DDP the slowest rank's
               time.
  elapsed_s    wall time from the start of training (model built, data
               loaded) to the end of that epoch's evaluation.
  samples_per_s
               training samples of all workers per second of pure training
               time over the epochs after the first (the first carries
               warm-up): sum(samples) / sum(train_s) over epochs 2..E, which
               is the harmonic mean of the per-epoch rates since every epoch
               has 60000 samples. With one epoch, that epoch alone.
  time_to_target_s
               elapsed_s (wall, evaluations included) of the first epoch whose
               test accuracy is >= --target-accuracy, or null;
               train_time_to_target_s is the same with training time only.

Threads: torch.set_num_threads(1) does not reach Debian's OpenBLAS (pthread
build), which otherwise starts one thread per core, so the script also sets
OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1 before torch is imported.
The JSON records openblas_get_num_threads() (openblas_threads) and the
script warns if it is not 1.

OPENBLAS_CORETYPE (read by OpenBLAS when it loads, so it is set before torch
and numpy are imported; DDP children inherit it). Measured on the 2-core AMD
EPYC (Zen 3, AVX2 + FMA, no AVX-512) dev VM, Debian's OpenBLAS 0.3.21
(DYNAMIC_ARCH), one thread:
  SkylakeX  dies with SIGILL (illegal instruction) on the first sgemm: its
            kernels use AVX-512.
  Haswell   torch.mm 128x784 by 784x256: 66-71 GFLOP/s; 1024^3: 72-75.
  unset     OpenBLAS detects "Zen", whose sgemm kernel is the Haswell one:
            64-68 and 74-76 GFLOP/s, i.e. the same within noise.
  Zen       (forced) the same as unset.
Whole training steps of this MLP (batch 128, the probe below), in two probes
of two rounds each: Haswell 41-61k samples/s, unset 39-56k, SkylakeX SIGILL;
each of Haswell and unset came out ahead once, by less than the spread
between rounds (the machine is shared). The default, --openblas-coretype
auto, therefore measures rather than assumes. On the 2-core Intel Xeon (with
AVX-512) dev VM, OpenBLAS detects SkylakeX by itself, and the probe gave
SkylakeX 62-74k samples/s, unset 63-72k and Haswell 54-63k over two runs.
The probe times ~1.5 s of training steps in a fresh process for each
candidate (SkylakeX, Haswell, unset), best of two rounds, drops those that
crash, and uses the fastest. The probe and its
result are recorded in the JSON summary. --openblas-coretype NAME (or
"unset") skips the probe.

DDP on this 2-core machine is slower than one process (25-35k against
40-52k samples/s): every step allreduces 0.94 MB of gradients through gloo
over loopback TCP, several ms per step, and gloo's threads compete with the
two training processes for the two cores. PyTorch's DDP defaults are kept:
--bucket-cap-mb 0.25 (to overlap communication with the backward pass) was
slower (19k), and --gradient-as-bucket-view made no measurable difference.

Run with Debian's interpreter (/usr/bin/python3), which has python3-torch
1.13 and python3-numpy:
  /usr/bin/python3 bench/pytorch_mlp.py --mode single --epochs 10 --json out.json
"""

import argparse
import datetime
import gzip
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import time

DATA_DIR = "/usr/share/datasets/fashion-mnist"
CORETYPE_CANDIDATES = ["SkylakeX", "Haswell", "unset"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def apply_thread_and_coretype_env(coretype):
    """Sets the environment read by OpenBLAS/OpenMP when they load.

    Must run before numpy or torch is imported: both load OpenBLAS, which
    reads OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS once, at load time.
    """
    assert "torch" not in sys.modules and "numpy" not in sys.modules, "set env before import"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    if coretype == "unset":
        os.environ.pop("OPENBLAS_CORETYPE", None)
    else:
        os.environ["OPENBLAS_CORETYPE"] = coretype


def openblas_info():
    """Core name and thread count of the OpenBLAS that torch loaded."""
    import ctypes

    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return {
            "corename": lib.openblas_get_corename().decode(),
            "config": lib.openblas_get_config().decode(),
            "num_threads": int(lib.openblas_get_num_threads()),
        }
    except (OSError, AttributeError):
        return {"corename": None, "config": None, "num_threads": None}


# ---------------------------------------------------------------- data


def read_idx(path):
    """An IDX file (gzip) as a numpy array of its declared shape (uint8)."""
    import numpy as np

    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = 1
    for d in dims:
        expected *= d
    if body.size != expected:
        raise ValueError(f"{path}: {body.size} bytes of data, header says {expected}")
    return body.reshape(dims)


def load_split(data_dir, split):
    """(images float32 [n, 784] in [0, 1], labels int64 [n]) as tensors."""
    import numpy as np
    import torch

    images = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ---------------------------------------------------------------- model


def make_model(seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return model


def epoch_indices(n, seed, epoch, rank, world):
    """This rank's training indices for an epoch: DistributedSampler's."""
    import torch
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(iter(sampler)), dtype=torch.int64)


# ---------------------------------------------------------------- training


def train_worker(rank, world, args, port, result_path):
    """One worker: the whole run for single mode, one rank under DDP."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    ddp = world > 1
    if ddp:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=world)

    train_x, train_y = load_split(args.data_dir, "train")
    test_x, test_y = load_split(args.data_dir, "t10k")
    n_train = train_x.shape[0]
    # Each rank scores its share of the test set; counts are summed.
    test_lo = rank * test_x.shape[0] // world
    test_hi = (rank + 1) * test_x.shape[0] // world
    my_test_x, my_test_y = test_x[test_lo:test_hi], test_y[test_lo:test_hi]

    model = make_model(args.seed)
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(
            model,
            bucket_cap_mb=args.bucket_cap_mb,
            gradient_as_bucket_view=args.gradient_as_bucket_view,
        )
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)

    def barrier():
        if ddp:
            dist.barrier()

    def all_sum(values):
        t = torch.tensor(values, dtype=torch.float64)
        if ddp:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def all_max(value):
        t = torch.tensor([value], dtype=torch.float64)
        if ddp:
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.item()

    blas = openblas_info()
    epochs = []
    time_to_target = None
    train_time_to_target = None
    epochs_to_target = None
    train_total = 0.0
    barrier()
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        # Shuffling is part of each framework's data pipeline, so it is timed.
        barrier()
        t0 = time.perf_counter()
        order = epoch_indices(n_train, args.seed, epoch - 1, rank, world)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64)
        for lo in range(0, order.numel(), args.batch_size):
            idx = order[lo : lo + args.batch_size]
            xb = train_x.index_select(0, idx)
            yb = train_y.index_select(0, idx)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * idx.numel()
        train_s = all_max(time.perf_counter() - t0)
        train_total += train_s
        samples = order.numel()

        model.eval()
        with torch.no_grad():
            logits = model(my_test_x)
            correct = (logits.argmax(dim=1) == my_test_y).sum().item()
        loss_total, samples_total, correct_total = all_sum([loss_sum.item(), samples, correct])
        elapsed = all_max(time.perf_counter() - start)
        accuracy = correct_total / test_x.shape[0]
        record = {
            "epoch": epoch,
            "loss": loss_total / samples_total,
            "test_accuracy": accuracy,
            "train_s": train_s,
            "elapsed_s": elapsed,
            "samples": int(samples_total),
            "samples_per_s": samples_total / train_s,
        }
        epochs.append(record)
        if time_to_target is None and accuracy >= args.target_accuracy:
            time_to_target = elapsed
            train_time_to_target = train_total
            epochs_to_target = epoch
        if rank == 0:
            print(
                f"epoch {epoch:3d}  loss {record['loss']:.4f}  test_acc {accuracy:.4f}  "
                f"train {train_s:7.3f} s  {record['samples_per_s']:9.0f} samples/s  "
                f"elapsed {elapsed:7.2f} s",
                flush=True,
            )

    if rank == 0:
        write_summary(args, world, epochs, time_to_target, train_time_to_target,
                      epochs_to_target, blas, result_path)
    if ddp:
        # Leave without tearing the process group down: with torch 1.13 the
        # gloo process group's destructor can deadlock (it joins a worker
        # thread that waits for the GIL the destroying thread holds), which
        # hung runs here. mp.spawn only needs exit code 0.
        dist.barrier()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def write_summary(args, world, epochs, time_to_target, train_time_to_target, epochs_to_target,
                  blas, result_path):
    import torch

    steady = epochs[1:] if len(epochs) > 1 else epochs
    summary = {
        "framework": "pytorch",
        "mode": args.mode,
        "workers": world,
        "threads_per_worker": 1,
        "samples_per_s": sum(e["samples"] for e in steady) / sum(e["train_s"] for e in steady),
        "samples_per_s_definition": (
            "sum(samples) / sum(train_s) over epochs 2..E (epoch 1 alone if E == 1); "
            "samples of all workers, training time only"
        ),
        "epochs": epochs,
        "target_accuracy": args.target_accuracy,
        "time_to_target_s": time_to_target,
        "time_to_target_definition": "elapsed_s (wall, evaluation included) of the first epoch "
        "with test_accuracy >= target",
        "train_time_to_target_s": train_time_to_target,
        "epochs_to_target": epochs_to_target,
        "final_test_accuracy": epochs[-1]["test_accuracy"] if epochs else None,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "openblas_corename": blas["corename"],
        "openblas_threads": blas["num_threads"],
        "torch_version": torch.__version__,
        "hyperparameters": {
            "model": "784-256-128-10 relu",
            "init": "kaiming_normal fan_in, zero bias",
            "optimizer": "sgd",
            "lr": args.lr,
            "momentum": args.momentum,
            "batch_size_per_worker": args.batch_size,
            "seed": args.seed,
            "epochs": args.epochs,
        },
    }
    with open(result_path, "w") as f:
        json.dump(summary, f, indent=2)


def ddp_entry(rank, world, args, port, result_path):
    train_worker(rank, world, args, port, result_path)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- coretype probe


def probe_main(seconds):
    """Times training steps of the MLP on random data; prints JSON."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    model = make_model(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(128, 784)
    y = torch.randint(0, 10, (128,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(20):
        step()
    steps = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            step()
        steps += 10
    rate = steps * 128 / (time.perf_counter() - t0)
    print(json.dumps({"samples_per_s": rate, **openblas_info()}))


def probe_coretypes(candidates, seconds, rounds=2):
    """{candidate: best samples/s or None if it crashed} and the winner."""
    results = {c: None for c in candidates}
    detail = {c: [] for c in candidates}
    for _ in range(rounds):
        for c in candidates:
            env = dict(os.environ)
            env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            env.pop("OPENBLAS_CORETYPE", None)
            if c != "unset":
                env["OPENBLAS_CORETYPE"] = c
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--probe", str(seconds)],
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                detail[c].append(f"exit {proc.returncode}")
                continue
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            detail[c].append(round(out["samples_per_s"]))
            if results[c] is None or out["samples_per_s"] > results[c]:
                results[c] = out["samples_per_s"]
    working = {c: r for c, r in results.items() if r is not None}
    if not working:
        raise RuntimeError(f"every OPENBLAS_CORETYPE candidate failed: {detail}")
    best = max(working, key=working.get)
    return best, detail


# ---------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["single", "ddp"], default="single")
    p.add_argument("--workers", type=int, default=2, help="DDP processes (ddp mode)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=128, help="per worker")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bucket-cap-mb", type=float, default=25, help="DDP gradient bucket size")
    p.add_argument("--gradient-as-bucket-view", action="store_true", help="DDP option")
    p.add_argument("--target-accuracy", type=float, default=0.88)
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument(
        "--openblas-coretype",
        default="auto",
        help="auto (probe the candidates, use the fastest), 'unset', or an OpenBLAS core "
        "name such as Haswell",
    )
    p.add_argument(
        "--probe-candidates",
        default=",".join(CORETYPE_CANDIDATES),
        help="comma-separated coretypes tried by --openblas-coretype auto",
    )
    p.add_argument("--probe-seconds", type=float, default=1.5)
    p.add_argument("--json", help="write the JSON summary here")
    p.add_argument("--probe", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.workers < 1:
        p.error("--epochs, --batch-size and --workers must be positive")
    return args


def main(argv):
    args = parse_args(argv)
    if args.probe is not None:
        # Probe process: the environment was set by the parent.
        probe_main(args.probe)
        return 0

    probe = None
    coretype = args.openblas_coretype
    if coretype == "auto":
        candidates = [c for c in args.probe_candidates.split(",") if c]
        coretype, detail = probe_coretypes(candidates, args.probe_seconds)
        probe = {"candidates_samples_per_s": detail, "chosen": coretype}
        print(f"# OPENBLAS_CORETYPE probe (training samples/s, 1 thread): {detail}; "
              f"using {coretype}", flush=True)
    apply_thread_and_coretype_env(coretype)

    import tempfile

    import torch.multiprocessing as mp

    world = 1 if args.mode == "single" else args.workers
    print(
        f"# pytorch {args.mode}: {world} worker(s) x 1 thread, batch {args.batch_size}/worker, "
        f"lr {args.lr}, momentum {args.momentum}, seed {args.seed}, "
        f"OPENBLAS_CORETYPE={coretype}; {cpu_model()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        result_path = os.path.join(tmp, "summary.json")
        if world == 1:
            train_worker(0, 1, args, None, result_path)
        else:
            mp.spawn(ddp_entry, args=(world, args, free_port(), result_path), nprocs=world)
        with open(result_path) as f:
            summary = json.load(f)
    summary["openblas_coretype_probe"] = probe
    summary["command"] = " ".join([sys.executable] + sys.argv)
    summary["cpu_model"] = cpu_model()
    summary["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    if summary["openblas_threads"] not in (None, 1):
        print(f"warning: OpenBLAS runs {summary['openblas_threads']} threads", file=sys.stderr)
    print(
        f"# samples/s {summary['samples_per_s']:.0f} (epochs 2..E, training time only); "
        f"time to {args.target_accuracy:.0%}: "
        + (
            f"{summary['time_to_target_s']:.2f} s wall, "
            f"{summary['train_time_to_target_s']:.2f} s training, "
            f"epoch {summary['epochs_to_target']}"
            if summary["time_to_target_s"] is not None
            else "not reached"
        )
        + f"; final test accuracy {summary['final_test_accuracy']:.4f}",
        flush=True,
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
