"""Model FLOP utilisation on one GPU: the `large` WeatherMixer in bf16, eager and compiled,
next to the GPU's measured bf16 matmul ceiling. Writes the `gpu` section.

FLOPs are counted analytically (`weathermixer.model.flops_per_sample`, checked against
torch's FlopCounterMode in the tests): per sample and forward pass
    2·T·F_in·C + depth·(4·C·T·H_t + 4·T·C·H_c) + 2·T·C·F_out,
and a training step is 3× the forward pass. MFU = achieved model FLOP/s / peak.

    python benchmarks/mfu.py                    # eager and torch.compile, ~2-3 min on an H100
    python benchmarks/mfu.py --no-compile --batch-size 2

Without CUDA it only writes the section as "not measured yet".
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch
from common import RESULTS, write_section
from weathermixer.benchmark import PRESETS, run_benchmark
from weathermixer.config import BenchmarkConfig
from weathermixer.model import flops_per_sample, parameter_count

from shared_hpc import get_comm, write_json_atomic
from shared_hpc.bench import machine_line, markdown_table


def matmul_ceiling(n: int = 8192, repeats: int = 20) -> float:
    """bf16 TFLOP/s of a large square matmul on this GPU (the practical peak)."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="large", choices=sorted(PRESETS))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=989.4,
        help="dense bf16 peak of the GPU (H100 SXM: 989.4)",
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile run")
    parser.add_argument("--depth", type=int, help="override the preset's depth (memory)")
    args = parser.parse_args()
    cfg = PRESETS[args.preset]
    if args.depth:
        cfg = replace(cfg, depth=args.depth)
    if not torch.cuda.is_available():
        write_section(
            "gpu",
            "## Model FLOP utilisation on a GPU\n\nNot measured yet: "
            "`python benchmarks/mfu.py` on a machine with a CUDA GPU writes this "
            "section.\n",
        )
        print("no CUDA device: wrote the placeholder section")
        return
    began = time.perf_counter()
    ceiling = matmul_ceiling()
    runs = []
    for compiled in (False,) if args.no_compile else (False, True):
        bench = BenchmarkConfig(
            model=cfg,
            batch_size=args.batch_size,
            steps=args.steps,
            warmup=3,
            precision="bf16",
            compile=compiled,
            peak_tflops=args.peak_tflops,
        )
        r = run_benchmark(bench, get_comm()).metrics()["ranks"][0]
        runs.append(r)
        print(
            json.dumps(
                {
                    k: r[k]
                    for k in ("compiled", "step_s", "tflops_per_rank", "mfu", "peak_memory_bytes")
                }
            ),
            flush=True,
        )
        torch.cuda.empty_cache()
    write_json_atomic(RESULTS / "mfu.json", {"ceiling_tflops": ceiling, "runs": runs})
    rows = [
        [
            "torch.compile" if r["compiled"] else "eager",
            f"{r['step_s'] * 1e3:.0f}",
            f"{r['samples_per_s']:.2f}",
            f"{r['tflops_per_rank']:.0f}",
            f"{100 * r['mfu']:.1f} %",
            f"{100 * r['tflops_per_rank'] / ceiling:.1f} %",
            f"{r['peak_memory_bytes'] / 2**30:.1f}",
        ]
        for r in runs
    ]
    fl = flops_per_sample(cfg)
    write_section(
        "gpu",
        (
            "## Model FLOP utilisation on a GPU\n\n"
            f"`benchmarks/mfu.py`: the `{args.preset}` preset ({cfg.grid[0]}×{cfg.grid[1]} grid, "
            f"patch {cfg.patch} → {cfg.tokens:,} tokens, {cfg.state_channels}+{cfg.extra_channels} "
            f"channels, embed {cfg.embed_dim}, token hidden {cfg.token_hidden}, channel hidden "
            f"{cfg.channel_hidden}, depth {cfg.depth}, {parameter_count(cfg) / 1e9:.2f} B "
            f"parameters), batch {args.batch_size}, bf16 autocast, AdamW, {args.steps} timed "
            "steps; "
            f"{fl['train_step'] / 1e12:.2f} TFLOP per sample and step. Peak {args.peak_tflops:g} "
            f"TFLOP/s (dense bf16); measured bf16 matmul ceiling in the same run "
            f"{ceiling:.0f} TFLOP/s. Paper: 23–28 % of peak at 256 GPUs. "
            f"Machine: {machine_line()}; whole run {time.perf_counter() - began:.0f} s.\n\n"
            + markdown_table(
                [
                    "mode",
                    "ms/step",
                    "samples/s",
                    "TFLOP/s",
                    "MFU (peak)",
                    "of matmul ceiling",
                    "peak GiB",
                ],
                rows,
            )
        ),
    )


if __name__ == "__main__":
    main()
