#!/usr/bin/python3
"""dtrain against PyTorch on the Fashion-MNIST MLP, in one run.

Runs, one after the other and each alone on the machine:
  1. PyTorch, 1 process x 1 thread      (bench/pytorch_mlp.py --mode single)
  2. PyTorch DDP, gloo, 2 x 1 thread    (bench/pytorch_mlp.py --mode ddp)
  3. dtrain train --workers 1
  4. dtrain train --workers 2, then the same with --balance
  5. --rounds rounds of short runs, back to back: PyTorch 1 thread, dtrain
     1 worker, two 1-worker dtrain jobs at once, dtrain 2 workers, dtrain 2
     workers --balance
  6. bench_gemm: the core's float32 FMA peak and single-thread GEMM GFLOP/s
     of dtrain's sgemm and OpenBLAS on the MLP's layer shapes
and prints a Markdown report (also written to --markdown FILE): the
throughput ratios, time to the target accuracy, final accuracy, GEMM
GFLOP/s against the measured peak, the exact commands, CPU model and date.

Both frameworks train the same model the same way: 784-256-128-10 ReLU MLP,
softmax cross-entropy, He init, SGD with momentum, batch --batch-size per
worker, data reshuffled each epoch, test accuracy on the 10000 test images
after every epoch. Definitions, applied alike to both frameworks from their
per-epoch records:
  samples/s   training samples of all workers per second of training time
              (evaluation excluded) over epochs 2..E: the harmonic mean of the
              per-epoch rates, i.e. total samples / total training time, as
              every epoch has 60000 samples. Epoch 1 carries the warm-up.
  time to X   wall time from the start of training to the end of the
              evaluation of the first epoch with test accuracy >= X
              (evaluations included; process start-up and data loading not).
              "training only" sums the training time of epochs 1..that one.

Before each measurement the driver waits (up to --quiet-timeout seconds)
until the other processes on the machine use under --max-busy of the CPUs
over a 3 s window, and it reports what it measured; this machine is shared.

Use Debian's interpreter (python3-torch 1.13, python3-numpy):
  /usr/bin/python3 bench/compare_pytorch.py --markdown compare.md --json compare.json
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The same machine description as the PyTorch side's JSON (the module imports
# torch only inside its functions, so this loads nothing else).
from pytorch_mlp import cpu_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_TRAIN = 60000
# GEMM flops of one training sample: forward 2*(784*256 + 256*128 + 128*10),
# the same again for the weight gradients, plus the input gradients of
# layers 2 and 3 (layer 1's is not needed): 2*(256*128 + 128*10).
FWD_FLOPS = 2 * (784 * 256 + 256 * 128 + 128 * 10)
FLOPS_PER_SAMPLE = 2 * FWD_FLOPS + 2 * (256 * 128 + 128 * 10)


def cpu_jiffies():
    """(all, busy) CPU time of the machine so far, in clock ticks, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), sum(fields) - idle


def cpu_busy_fraction(window_s=3.0):
    """Share of all CPUs busy over a window."""
    total0, busy0 = cpu_jiffies()
    time.sleep(window_s)
    total1, busy1 = cpu_jiffies()
    return 0.0 if total1 <= total0 else (busy1 - busy0) / (total1 - total0)


def wait_until_quiet(max_busy, timeout_s, log):
    """Waits for a quiet machine; returns the last busy fraction seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = cpu_busy_fraction()
        if busy <= max_busy:
            return busy
        if time.monotonic() >= deadline:
            log(f"# machine still busy ({busy:.0%} of CPUs) after {timeout_s:.0f} s; "
                "measuring anyway")
            return busy
        log(f"# waiting for a quiet machine: {busy:.0%} of CPUs busy")
        time.sleep(5)


def run_logged(cmd, env, log, timeout_s):
    """Runs cmd, echoing its output; returns (returncode, output, wall_s, other_busy).

    other_busy is the share of the CPUs that processes other than cmd (and its
    children) used while it ran: the machine's busy time from /proc/stat less
    cmd's own CPU time, over wall time x CPUs. Anything above a few % means the
    measurement shared the machine.
    """
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    total0, busy0 = cpu_jiffies()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=REPO)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            log("  " + line.rstrip("\n"))
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        lines.append(f"killed after {timeout_s} s\n")
    wall = time.perf_counter() - t0
    total1, busy1 = cpu_jiffies()
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_s = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    tick = os.sysconf("SC_CLK_TCK")
    machine_s = (total1 - total0) / tick  # wall x CPUs, as the kernel counts it
    other = None
    if machine_s > 0:
        other = max(0.0, ((busy1 - busy0) / tick - own_s) / machine_s)
    return proc.returncode, "".join(lines), wall, other


# ---------------------------------------------------------------- metrics


def steady_samples_per_s(epochs):
    """Harmonic mean of per-epoch samples/s over epochs 2..E (1 if E == 1)."""
    steady = epochs[1:] if len(epochs) > 1 else epochs
    rates = [e["samples_per_s"] for e in steady if e.get("samples_per_s")]
    if not rates:
        return None
    return len(rates) / sum(1.0 / r for r in rates)


def epoch_train_s(e):
    """Training time of an epoch: pytorch_mlp.py's train_s, dtrain's epoch_s."""
    for key in ("train_s", "epoch_s"):
        if e.get(key) is not None:
            return e[key]
    return N_TRAIN / e["samples_per_s"]


def summarize(epochs, target):
    """Numbers for the report from a list of per-epoch records."""
    out = {
        "samples_per_s": steady_samples_per_s(epochs),
        "time_to_target_s": None,
        "train_time_to_target_s": None,
        "epochs_to_target": None,
        "final_test_accuracy": epochs[-1].get("test_accuracy") if epochs else None,
        "epochs_run": len(epochs),
    }
    train_total = 0.0
    for e in epochs:
        train_total += epoch_train_s(e)
        acc = e.get("test_accuracy")
        if acc is not None and acc >= target:
            out["time_to_target_s"] = e["elapsed_s"]
            out["train_time_to_target_s"] = train_total
            out["epochs_to_target"] = e["epoch"]
            break
    return out


def read_dtrain_metrics(path):
    """Per-epoch records of a dtrain --metrics-out JSON-lines file."""
    epochs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if "epoch" not in rec:
                continue  # not a per-epoch record
            for key in ("samples_per_s", "elapsed_s", "test_accuracy"):
                if key not in rec:
                    raise ValueError(f"{path}:{n}: epoch record without '{key}'")
            epochs.append(rec)
    epochs.sort(key=lambda r: r["epoch"])
    return epochs


# ---------------------------------------------------------------- runs


def run_recorded(args, cmd, log):
    """Runs cmd alone (run_logged); returns (returncode, output, the result
    record every run starts from)."""
    rc, output, wall, other = run_logged(cmd, dict(os.environ), log, args.run_timeout)
    result = {"command": " ".join(shlex.quote(c) for c in cmd), "returncode": rc,
              "process_wall_s": wall, "other_busy_during": other}
    return rc, output, result


def run_pytorch(args, mode, coretype, tmp, log, epochs=None, tag=""):
    out_json = os.path.join(tmp, f"pytorch_{mode}{tag}.json")
    cmd = [
        args.python, os.path.join("bench", "pytorch_mlp.py"),
        "--mode", mode,
        "--epochs", str(epochs or args.epochs),
        "--lr", repr(args.lr),
        "--momentum", repr(args.momentum),
        "--batch-size", str(args.batch_size),
        "--seed", str(args.seed),
        "--target-accuracy", repr(args.target_accuracy),
        "--openblas-coretype", coretype,
        "--json", out_json,
    ]  # fmt: skip
    if mode == "ddp":
        cmd[4:4] = ["--workers", "2"]
    rc, output, result = run_recorded(args, cmd, log)
    if rc != 0 or not os.path.exists(out_json):
        result["error"] = output[-2000:]
        return result
    with open(out_json) as f:
        raw = json.load(f)
    result.update(raw=raw, epochs=raw["epochs"], **summarize(raw["epochs"], args.target_accuracy))
    return result


def dtrain_command(args, workers, epochs, run_dir, balance=False):
    """The dtrain training command of the comparison, writing into run_dir;
    returns (command, metrics file). balance: speed-balanced batches."""
    os.makedirs(run_dir, exist_ok=True)
    metrics = os.path.join(run_dir, "metrics.jsonl")
    cmd = [
        args.dtrain, "train",
        "--data", "fashion-mnist",
        "--test-data", "fashion-mnist:test",
        "--model", "mlp",
        "--hidden", "256,128",
        "--activation", "relu",
        "--optimizer", "momentum",
        "--momentum", repr(args.momentum),
        "--lr", repr(args.lr),
        "--batch-size", str(args.batch_size),
        "--epochs", str(epochs),
        "--workers", str(workers),
        "--seed", str(args.seed),
        "--out", os.path.join(run_dir, "model.dtm"),
        "--metrics-out", metrics,
        "--quiet",
    ]  # fmt: skip
    if balance:
        cmd.append("--balance")
    return cmd, metrics


def run_dtrain(args, workers, tmp, log, epochs=None, tag="", balance=False):
    cmd, metrics = dtrain_command(args, workers, epochs or args.epochs,
                                  os.path.join(tmp, f"dtrain_w{workers}{tag}"
                                               + ("_balance" if balance else "")),
                                  balance)
    rc, output, result = run_recorded(args, cmd, log)
    if rc != 0 or not os.path.exists(metrics):
        result["error"] = output[-2000:]
        return result
    try:
        epochs = read_dtrain_metrics(metrics)
    except (ValueError, json.JSONDecodeError) as e:
        result["error"] = str(e)
        return result
    if not epochs:
        result["error"] = f"{metrics}: no per-epoch records"
        return result
    result.update(epochs=epochs, **summarize(epochs, args.target_accuracy))
    return result


def run_dtrain_pair(args, tmp, log, epochs, tag):
    """Two independent 1-worker dtrain jobs at once: the machine's capacity for
    two concurrent workers with no communication between them, the physical
    ceiling a 2-worker job is measured against. Returns the summed samples/s."""
    procs, paths = [], []
    for k in (0, 1):
        cmd, metrics = dtrain_command(args, 1, epochs,
                                      os.path.join(tmp, f"dtrain_pair{tag}_{k}"))
        log("$ " + " ".join(shlex.quote(c) for c in cmd) + " &")
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT))
        paths.append(metrics)
    total = 0.0
    for proc, metrics in zip(procs, paths):
        if proc.wait(timeout=args.run_timeout) != 0 or not os.path.exists(metrics):
            return None
        total += summarize(read_dtrain_metrics(metrics), args.target_accuracy)["samples_per_s"]
    return total


GEMM_ROW = re.compile(r"^(\S+(?: L\d)?)\s+(\d+)x(\d+)x(\d+) ([NT]{2})\s+(.*)$")


def parse_bench_gemm(text):
    """Peak and per-shape GFLOP/s per library from bench_gemm's output."""
    peak = None
    peak_isa = "?"
    libs = None
    rows = []
    for line in text.splitlines():
        m = re.match(r"# peak: ([\d.]+) GFLOP/s.*?chains of (\S+) FMA", line)
        if m:
            peak = float(m.group(1))
            peak_isa = m.group(2)
            continue
        if line.startswith("shape") and "m x n x k" in line:
            # Drop the last columns: "dtrain/peak" and "dtrain kernel".
            libs = line.split("m x n x k", 1)[1].split("dtrain/peak", 1)[0].split()
            continue
        m = GEMM_ROW.match(line)
        if m and libs:
            values = m.group(6).split()
            gflops = {lib: float(v) for lib, v in zip(libs, values[: len(libs)])}
            rows.append({
                "shape": m.group(1),
                "m": int(m.group(2)), "n": int(m.group(3)), "k": int(m.group(4)),
                "trans": m.group(5),
                "gflops": gflops,
                "kernel": values[len(libs) + 1] if len(values) > len(libs) + 1 else "",
                "wrong": "WRONG" in line,
            })  # fmt: skip
    return {"peak_gflops": peak, "peak_isa": peak_isa, "libraries": libs or [], "rows": rows}


def flop_weighted_gflops(rows, lib):
    """GFLOP/s of running every shape once: total flops / total time."""
    flops = time_s = 0.0
    for r in rows:
        g = r["gflops"].get(lib)
        if not g:
            return None
        f = 2.0 * r["m"] * r["n"] * r["k"]
        flops += f
        time_s += f / (g * 1e9)
    return flops / time_s / 1e9 if time_s > 0 else None


def run_gemm(args, coretype, log):
    cmd = [args.bench_gemm] + shlex.split(args.gemm_args)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype != "unset":
        env["OPENBLAS_CORETYPE"] = coretype
    rc, output, wall, other = run_logged(cmd, env, log, args.run_timeout)
    result = {"command": " ".join(shlex.quote(c) for c in cmd)
              + ("" if coretype == "unset" else f"  (OPENBLAS_CORETYPE={coretype})"),
              "returncode": rc, "output": output, "process_wall_s": wall,
              "other_busy_during": other}
    parsed = parse_bench_gemm(output)
    if rc != 0 or parsed["peak_gflops"] is None or not parsed["rows"]:
        result["error"] = output[-2000:]
        return result
    mlp_rows = [r for r in parsed["rows"] if r["shape"] != "square"]
    result.update(parsed)
    result["mlp_gflops"] = {lib: flop_weighted_gflops(mlp_rows, lib) for lib in parsed["libraries"]}
    square = [r for r in parsed["rows"] if r["shape"] == "square"]
    result["square_gflops"] = square[0]["gflops"] if square else {}
    return result


# ---------------------------------------------------------------- report


def fmt(v, spec="{:.0f}", none="n/a"):
    return none if v is None else spec.format(v)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def report(args, results, meta):
    tgt = f"{args.target_accuracy:.0%}"
    pt1, pt2 = results.get("pytorch_single", {}), results.get("pytorch_ddp", {})
    dt1, dt2 = results.get("dtrain_1", {}), results.get("dtrain_2", {})
    dt2b = results.get("dtrain_2_balance", {})
    gemm = results.get("gemm", {})
    lines = []
    add = lines.append

    def x(v):
        return fmt(v, "{:.2f}x")

    def pct(v):
        return fmt(None if v is None else 100 * v, "{:.0f}%")

    def sec(v):
        return fmt(v, "{:.1f} s", f"not reached in {args.epochs} epochs")

    def acc(v):
        return fmt(v, "{:.4f}")

    add(f"# dtrain vs PyTorch: Fashion-MNIST MLP 784-256-128-10, {meta['date']}")
    add("")
    add(f"- Machine: {meta['cpu_model']}, nproc = {meta['nproc']}, {meta['kernel']}")
    add(f"- PyTorch {meta.get('torch_version', '?')} (Debian python3-torch), OpenBLAS core "
        f"{meta.get('openblas_corename', '?')} (OPENBLAS_CORETYPE="
        f"{meta.get('openblas_coretype', '?')}), 1 thread per process")
    probe = meta.get("openblas_coretype_probe")
    if probe:
        add(f"- OPENBLAS_CORETYPE chosen by measurement (training samples/s of 1.5 s of steps, "
            f"two rounds; 'exit -4' is SIGILL): {probe['candidates_samples_per_s']}")
    add(f"- Training: batch {args.batch_size} per worker, SGD momentum {args.momentum}, "
        f"lr {args.lr}, He init, seed {args.seed}, {args.epochs} epochs, reshuffled each epoch")
    add("- samples/s: training samples of all workers per second of training time "
        "(evaluation excluded), harmonic mean over epochs 2..E")
    add(f"- time to {tgt}: wall time from the start of training to the end of the evaluation "
        f"of the first epoch with test accuracy >= {tgt} (evaluations included); "
        "'training only' counts training time alone")
    add("")
    add("| Comparison | dtrain | PyTorch | dtrain / PyTorch |")
    add("|---|---:|---:|---:|")
    add(f"| samples/s: dtrain 1 worker vs PyTorch 1 thread | {fmt(dt1.get('samples_per_s'))} "
        f"| {fmt(pt1.get('samples_per_s'))} | "
        f"{x(ratio(dt1.get('samples_per_s'), pt1.get('samples_per_s')))} |")
    add(f"| samples/s: dtrain 2 workers vs PyTorch DDP 2 procs | "
        f"{fmt(dt2.get('samples_per_s'))} | {fmt(pt2.get('samples_per_s'))} | "
        f"{x(ratio(dt2.get('samples_per_s'), pt2.get('samples_per_s')))} |")
    add(f"| scaling: 2 workers / 1 worker (samples/s) | "
        f"{x(ratio(dt2.get('samples_per_s'), dt1.get('samples_per_s')))} | "
        f"{x(ratio(pt2.get('samples_per_s'), pt1.get('samples_per_s')))} | |")
    add(f"| scaling: 2 workers --balance / 1 worker (samples/s; {fmt(dt2b.get('samples_per_s'))}) | "
        f"{x(ratio(dt2b.get('samples_per_s'), dt1.get('samples_per_s')))} | | |")
    add("")
    rounds = results.get("rounds", {}).get("rounds", [])

    def round_values(key):
        return sorted(r[key] for r in rounds if r.get(key))

    def median_of(key, show):
        vals = round_values(key)
        return show(statistics.median(vals)) if vals else "n/a"

    def median_and_range(key):
        vals = round_values(key)
        if not vals:
            return "n/a"
        return f"{x(statistics.median(vals))} ({x(vals[0])}-{x(vals[-1])})"

    gemm_ok = gemm and "error" not in gemm and gemm.get("peak_gflops")
    mlp_rows = [r for r in gemm.get("rows", []) if r["shape"] != "square"] if gemm_ok else []
    add(f"Targets ({args.epochs}-epoch runs above; rounds below: median and range of the "
        "per-round ratios):")
    add("")
    add(f"| Target | {args.epochs}-epoch runs | rounds |")
    add("|---|---:|---:|")
    add(f"| dtrain 1 worker >= 1.3x PyTorch 1 thread | "
        f"{x(ratio(dt1.get('samples_per_s'), pt1.get('samples_per_s')))} | "
        f"{median_and_range('vs_pytorch')} |")
    add(f"| dtrain 2 workers >= 1.8x dtrain 1 worker | "
        f"{x(ratio(dt2.get('samples_per_s'), dt1.get('samples_per_s')))} | "
        f"{median_and_range('ratio')} |")
    add(f"| dtrain 2 workers --balance >= 1.8x dtrain 1 worker | "
        f"{x(ratio(dt2b.get('samples_per_s'), dt1.get('samples_per_s')))} | "
        f"{median_and_range('ratio_balance')} |")
    if mlp_rows:
        shares = [(r["gflops"]["dtrain"] / gemm["peak_gflops"], r["shape"]) for r in mlp_rows
                  if r["gflops"].get("dtrain")]
        low, low_shape = min(shares)
        add(f"| dtrain GEMM >= 70% of peak on every MLP layer shape | lowest: {pct(low)} "
            f"({low_shape}) | |")
    add("")
    if rounds:
        plural = "s" if len(rounds) != 1 else ""
        add(f"The same throughputs in {len(rounds)} round{plural} of short runs taken back to "
            f"back ({args.round_epochs} epochs each, samples/s over epochs 2..E): PyTorch on 1 "
            "thread, dtrain on 1 worker, two independent 1-worker dtrain jobs at the same time "
            "(the machine's capacity for two concurrent workers, no communication), dtrain on 2 "
            "workers, and dtrain on 2 workers with --balance. Each core of this shared VM changes speed for stretches of seconds, which "
            "moves single runs by 10-20%; the ratios within a round compare runs taken seconds "
            "apart.")
        add("")
        add("| round | PyTorch 1 thread | dtrain 1 worker | two 1-worker jobs at once (sum) | "
            "dtrain 2 workers | dtrain 2 workers --balance | 1 worker / PyTorch | "
            "2 workers / 1 worker | 2 workers / two jobs at once | --balance / 1 worker | "
            "--balance / two jobs at once |")
        add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, r in enumerate(rounds, 1):
            add(f"| {i} | {fmt(r.get('pytorch'))} | {fmt(r.get('w1'))} | {fmt(r.get('pair'))} | "
                f"{fmt(r.get('w2'))} | {fmt(r.get('w2b'))} | {x(r.get('vs_pytorch'))} | "
                f"{x(r.get('ratio'))} | {pct(r.get('ratio_ceiling'))} | "
                f"{x(r.get('ratio_balance'))} | {pct(r.get('ratio_balance_ceiling'))} |")
        add(f"| median | | | | | | {median_of('vs_pytorch', x)} | {median_of('ratio', x)} | "
            f"{median_of('ratio_ceiling', pct)} | {median_of('ratio_balance', x)} | "
            f"{median_of('ratio_balance_ceiling', pct)} |")
        add("")
    add(f"| Time to {tgt} test accuracy (speedup = PyTorch time / dtrain time) | dtrain | "
        "PyTorch | speedup |")
    add("|---|---:|---:|---:|")
    for label, d, p in (("1 worker / 1 thread", dt1, pt1), ("2 workers / DDP 2 procs", dt2, pt2),
                        ("2 workers --balance / DDP 2 procs", dt2b, pt2)):
        add(f"| {label}, wall | {sec(d.get('time_to_target_s'))} | "
            f"{sec(p.get('time_to_target_s'))} | "
            f"{x(ratio(p.get('time_to_target_s'), d.get('time_to_target_s')))} |")
        add(f"| {label}, training only | {sec(d.get('train_time_to_target_s'))} | "
            f"{sec(p.get('train_time_to_target_s'))} | "
            f"{x(ratio(p.get('train_time_to_target_s'), d.get('train_time_to_target_s')))} |")
        add(f"| {label}, epochs | {fmt(d.get('epochs_to_target'), '{}', '-')} | "
            f"{fmt(p.get('epochs_to_target'), '{}', '-')} | |")
    add("")
    add(f"| Final test accuracy (epoch {args.epochs}) | dtrain | PyTorch |")
    add("|---|---:|---:|")
    add(f"| 1 worker / 1 thread | {acc(dt1.get('final_test_accuracy'))} | "
        f"{acc(pt1.get('final_test_accuracy'))} |")
    add(f"| 2 workers / DDP 2 procs | {acc(dt2.get('final_test_accuracy'))} | "
        f"{acc(pt2.get('final_test_accuracy'))} |")
    add(f"| 2 workers --balance | {acc(dt2b.get('final_test_accuracy'))} | |")
    add("")

    if gemm and "error" not in gemm:
        peak = gemm["peak_gflops"]
        add(f"GEMM, single thread (bench_gemm), against the measured core peak of "
            f"{peak:.1f} GFLOP/s float32 ({gemm.get('peak_isa', '?')} FMA on registers):")
        add("")
        add("| GEMM | dtrain sgemm GFLOP/s | % of peak | dtrain kernel | oneDNN GFLOP/s | "
            "% of peak | OpenBLAS GFLOP/s | % of peak |")
        add("|---|---:|---:|---|---:|---:|---:|---:|")

        def cells(values, kernel):
            d, n, o = values.get("dtrain"), values.get("oneDNN"), values.get("OpenBLAS")
            return (f"{fmt(d, '{:.1f}')} | {fmt(ratio(d, peak), '{:.0%}')} | {kernel} | "
                    f"{fmt(n, '{:.1f}')} | {fmt(ratio(n, peak), '{:.0%}')} | "
                    f"{fmt(o, '{:.1f}')} | {fmt(ratio(o, peak), '{:.0%}')}")

        add("| MLP training-step shapes, batch 128 (flop-weighted, 8 GEMMs) | "
            f"{cells(gemm['mlp_gflops'], '')} |")
        for r in gemm["rows"]:
            add(f"| {r['shape']} {r['m']}x{r['n']}x{r['k']} {r['trans']} | "
                f"{cells(r['gflops'], r['kernel'])} |" + (" WRONG RESULT |" if r["wrong"] else ""))
        add("")
        add("The OpenBLAS column calls cblas_sgemm on dtrain's row-major layouts; PyTorch's "
            "Linear layers call the same library with other transpositions, so it is a guide "
            "to, not a measurement of, PyTorch's GEMM time.")
        add("")
        add("Training throughput as GEMM GFLOP/s per worker "
            f"(samples/s x {FLOPS_PER_SAMPLE / 1e6:.3f} MFLOP / workers; "
            "everything that is not GEMM counts as lost time):")
        add("")
        add("| Run | GFLOP/s per worker | % of peak |")
        add("|---|---:|---:|")
        for label, r, w in (("dtrain 1 worker", dt1, 1), ("PyTorch 1 thread", pt1, 1),
                            ("dtrain 2 workers", dt2, 2), ("PyTorch DDP 2 procs", pt2, 2)):
            sps = r.get("samples_per_s")
            g = None if sps is None else sps * FLOPS_PER_SAMPLE / w / 1e9
            add(f"| {label} | {fmt(g, '{:.1f}')} | {fmt(ratio(g, peak), '{:.0%}')} |")
        add("")

    add("Per-epoch test accuracy and samples/s:")
    add("")
    names = [("dtrain 1w", dt1), ("PyTorch 1t", pt1), ("dtrain 2w", dt2),
             ("dtrain 2w --balance", dt2b), ("PyTorch DDP", pt2)]
    present = [(n, r) for n, r in names if r.get("epochs")]
    if present:
        add("| epoch | " + " | ".join(f"{n} acc | {n} samples/s" for n, _ in present) + " |")
        add("|---:|" + "---:|---:|" * len(present))
        for i in range(max(len(r["epochs"]) for _, r in present)):
            cells = []
            for _, r in present:
                e = r["epochs"][i] if i < len(r["epochs"]) else {}
                cells.append(f"{acc(e.get('test_accuracy'))} | {fmt(e.get('samples_per_s'))}")
            add(f"| {i + 1} | " + " | ".join(cells) + " |")
        add("")

    add("Commands, run in this order, each alone (other load: the share of the CPUs that other "
        "processes used in the 3 s before the run and during it, from /proc/stat):")
    add("")
    add("```")
    for key in ("pytorch_single", "pytorch_ddp", "dtrain_1", "dtrain_2", "dtrain_2_balance",
                "gemm"):
        r = results.get(key)
        if r is None:
            continue
        status = "" if "error" not in r else f"   # FAILED (exit {r.get('returncode')})"
        add(f"{r['command']}{status}")
        add(f"    # other load: {fmt(r.get('busy_before'), '{:.0%}', '-')} of the CPUs before, "
            f"{fmt(r.get('other_busy_during'), '{:.0%}', '-')} during; "
            f"process wall {fmt(r.get('process_wall_s'), '{:.1f} s')}")
    add("```")
    add("")
    add(f"Driver: `{meta['driver_command']}`")
    failed = [k for k, r in results.items() if "error" in r]
    for k in failed:
        add("")
        add(f"**{k} failed** (exit {results[k].get('returncode')}):")
        add("")
        add("```")
        add(results[k]["error"].strip()[-1500:])
        add("```")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=12,
                   help="epochs for every run (PyTorch first reaches 88%% at epoch 10 with "
                   "seed 1, single and DDP)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=128, help="per worker")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--target-accuracy", type=float, default=0.88)
    p.add_argument("--dtrain", default="build/dtrain")
    p.add_argument("--bench-gemm", default=None,
                   help="bench_gemm binary (default: build/bench/bench_gemm or build/bench_gemm)")
    p.add_argument("--gemm-args", default="", help="extra bench_gemm arguments, e.g. --quick")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter with torch for bench/pytorch_mlp.py")
    p.add_argument("--openblas-coretype", default="auto",
                   help="for PyTorch and bench_gemm: auto (pytorch_mlp.py probes; its choice is "
                   "reused), 'unset', or a name such as Haswell")
    p.add_argument("--rounds", type=int, default=5,
                   help="rounds of short runs back to back: PyTorch 1 thread, dtrain 1 worker, "
                   "two dtrain 1-worker jobs at once, dtrain 2 workers, and with --balance "
                   "(0: none)")
    p.add_argument("--round-epochs", type=int, default=3, help="epochs of each run of a round")
    p.add_argument("--skip-pytorch", action="store_true")
    p.add_argument("--skip-dtrain", action="store_true")
    p.add_argument("--skip-gemm", action="store_true")
    p.add_argument("--max-busy", type=float, default=0.15,
                   help="wait before each run until other load is under this share of CPUs")
    p.add_argument("--quiet-timeout", type=float, default=300, help="seconds; 0: do not wait")
    p.add_argument("--run-timeout", type=float, default=1800, help="seconds per run")
    p.add_argument("--markdown", help="also write the report here")
    p.add_argument("--json", help="write every result (per-epoch records included) here")
    p.add_argument("--keep-dir", help="keep run outputs (metrics, models) in this directory")
    args = p.parse_args(argv)
    if args.bench_gemm is None:
        for cand in ("build/bench/bench_gemm", "build/bench_gemm"):
            if os.path.exists(os.path.join(REPO, cand)):
                args.bench_gemm = cand
                break
        else:
            args.bench_gemm = "build/bench/bench_gemm"
    for attr in ("dtrain", "bench_gemm"):
        path = getattr(args, attr)
        if not os.path.isabs(path):
            setattr(args, attr, os.path.join(REPO, path))
    return args


def main(argv):
    args = parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "driver_command": " ".join([shlex.quote(sys.executable)]
                                   + [shlex.quote(a) for a in sys.argv]),
        "openblas_coretype": args.openblas_coretype,
    }
    tmp = args.keep_dir or tempfile.mkdtemp(prefix="dtrain_vs_pytorch_")
    os.makedirs(tmp, exist_ok=True)
    results = {}
    coretype = args.openblas_coretype

    def measure(key, fn):
        busy = None
        if args.quiet_timeout > 0:
            busy = wait_until_quiet(args.max_busy, args.quiet_timeout, log)
        log(f"## {key}")
        results[key] = fn()
        results[key]["busy_before"] = busy

    try:
        if not args.skip_pytorch:
            measure("pytorch_single", lambda: run_pytorch(args, "single", coretype, tmp, log))
            raw = results["pytorch_single"].get("raw")
            if raw:
                # Probe once; DDP and bench_gemm use the same OpenBLAS kernels.
                coretype = raw["openblas_coretype"]
                meta.update(openblas_coretype=coretype, openblas_corename=raw["openblas_corename"],
                            torch_version=raw["torch_version"],
                            openblas_coretype_probe=raw.get("openblas_coretype_probe"))
            if coretype == "auto":
                coretype = "unset"  # the probe failed with the single run
            measure("pytorch_ddp", lambda: run_pytorch(args, "ddp", coretype, tmp, log))
        if not args.skip_dtrain:
            measure("dtrain_1", lambda: run_dtrain(args, 1, tmp, log))
            measure("dtrain_2", lambda: run_dtrain(args, 2, tmp, log))
            measure("dtrain_2_balance", lambda: run_dtrain(args, 2, tmp, log, balance=True))
        if not args.skip_dtrain and args.rounds > 0:
            # The same throughputs again, in short runs taken back to back, so
            # that each ratio compares runs made minutes, not tens of minutes,
            # apart; the median over rounds is the steadier estimate.
            rounds = []
            for i in range(args.rounds):
                tag, epochs = f"_round{i}", args.round_epochs
                r = {}

                def take(key, fn):
                    measure(key, fn)
                    return results.pop(key).get("samples_per_s")

                if not args.skip_pytorch:
                    r["pytorch"] = take(f"round_{i}_pytorch", lambda: run_pytorch(
                        args, "single", coretype, tmp, log, epochs=epochs, tag=tag))
                r["w1"] = take(f"round_{i}_w1", lambda: run_dtrain(
                    args, 1, tmp, log, epochs=epochs, tag=tag))
                r["pair"] = take(f"round_{i}_pair", lambda: {
                    "samples_per_s": run_dtrain_pair(args, tmp, log, epochs, tag)})
                r["w2"] = take(f"round_{i}_w2", lambda: run_dtrain(
                    args, 2, tmp, log, epochs=epochs, tag=tag))
                r["w2b"] = take(f"round_{i}_w2b", lambda: run_dtrain(
                    args, 2, tmp, log, epochs=epochs, tag=tag, balance=True))
                r["vs_pytorch"] = ratio(r["w1"], r.get("pytorch"))
                r["ratio"] = ratio(r["w2"], r["w1"])
                r["ratio_ceiling"] = ratio(r["w2"], r["pair"])
                r["ratio_balance"] = ratio(r["w2b"], r["w1"])
                r["ratio_balance_ceiling"] = ratio(r["w2b"], r["pair"])
                rounds.append(r)
            results["rounds"] = {"rounds": rounds}
        if not args.skip_gemm:
            measure("gemm", lambda: run_gemm(args, "unset" if coretype == "auto" else coretype,
                                             log))
    finally:
        if not args.keep_dir:
            shutil.rmtree(tmp, ignore_errors=True)

    text = report(args, results, meta)
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        slim = {k: {kk: vv for kk, vv in r.items() if kk not in ("raw", "output")}
                for k, r in results.items()}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "args": vars(args), "results": slim}, f, indent=2)
            f.write("\n")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
