"""Swap torch.nn.CrossEntropyLoss for crossentropy's in a training loop: same losses, less time and memory.

A next-token classifier (an embedding bag of the context, a hidden layer, a
32000-way output layer) trains for a few steps with each loss, from the same
initial weights on the same batches, each in a fresh process. The losses agree step by step; the
output layer's logits (batch x 32000) are where the time and memory go, and
where the fused kernel saves them. Prints the losses, the time per step and
the peak memory each step adds (sampled from /proc/self/statm on Linux).

    python examples/torch_training_loop.py              # batch 4096, 5 steps
    python examples/torch_training_loop.py --quick      # a small run
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from crossentropy.torch import CrossEntropyLoss

VOCAB, CONTEXT, WIDTH = 32000, 8, 256


class NextToken(torch.nn.Module):
    """Mean of the context's embeddings, one hidden layer, logits over the vocabulary."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(VOCAB, WIDTH, mode="mean")
        self.hidden = torch.nn.Linear(WIDTH, WIDTH)
        self.out = torch.nn.Linear(WIDTH, VOCAB)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(self.embed(context))))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_during(step: object) -> float:
    """The largest rise of resident memory while ``step()`` runs (MB), sampled every half millisecond."""
    base, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb() - base)
            time.sleep(0.0005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        step()  # type: ignore[operator]
    finally:
        done.set()
        thread.join()
    return max(peak[0], _rss_mb() - base)


def train(criterion: torch.nn.Module, model: torch.nn.Module, batches: list, lr: float) -> tuple[list, float, float]:
    """Train ``model`` on ``batches``; return the losses, the best time per step (s) and the largest peak (MB)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses, best, peak = [], float("inf"), 0.0
    for context, target in batches:

        def step(context: torch.Tensor = context, target: torch.Tensor = target) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(context), target)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))

        start = time.perf_counter()
        peak = max(peak, _peak_during(step))
        best = min(best, time.perf_counter() - start)
    return losses, best, peak


CRITERIA = {
    "torch.nn.CrossEntropyLoss": lambda: torch.nn.CrossEntropyLoss(label_smoothing=0.1),
    "crossentropy.torch.CrossEntropyLoss": lambda: CrossEntropyLoss(label_smoothing=0.1),
}


def run(name: str, batch: int, steps: int) -> tuple[list, float, float]:
    """One criterion's training run, from seed 0 (each runs in a fresh process, so neither reuses the other's
    freed memory)."""
    torch.manual_seed(0)
    batches = [(torch.randint(0, VOCAB, (batch, CONTEXT)), torch.randint(0, VOCAB, (batch,))) for _ in range(steps)]
    return train(CRITERIA[name](), NextToken(), batches, lr=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 256, 3 steps")
    args = parser.parse_args()
    batch, steps = (256, 3) if args.quick else (4096, 5)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        (ref_losses, ref_time, ref_peak), (losses, ours_time, ours_peak) = (
            pool.submit(run, name, batch, steps).result() for name in CRITERIA
        )
    largest = max(abs(a - b) / abs(b) for a, b in zip(losses, ref_losses, strict=True))
    print(f"batch {batch} x vocabulary {VOCAB}, {steps} SGD steps, {torch.get_num_threads()} threads")
    print(f"losses, torch:        {' '.join(f'{v:.6f}' for v in ref_losses)}")
    print(f"losses, crossentropy: {' '.join(f'{v:.6f}' for v in losses)}  (largest relative difference {largest:.1e})")
    print(f"time per step: {ours_time * 1e3:.0f} ms against {ref_time * 1e3:.0f} ms ({ours_time / ref_time:.2f}x)")
    print(f"peak memory a step adds: {ours_peak:.0f} MB against {ref_peak:.0f} MB")


if __name__ == "__main__":
    main()
