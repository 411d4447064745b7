"""Distil a small GPT-2-style student from a larger teacher with linear_distillation_loss, against the naive way.

Both models are Hugging Face ``GPT2LMHeadModel``s built from configs (nothing
is downloaded): a teacher (4 layers, width 256) first learns a small text
generated here with cross-entropy, then a student (2 layers, width 128)
learns to match the teacher's next-token distributions, KL(P_teacher ||
P_student) at temperature 2, with a 32000-token vocabulary as a real tokenizer
would have. The student is trained twice from the same initial weights, each
run in a fresh process: once with ``crossentropy.torch.linear_distillation_loss``
on both models' last hidden states and LM heads (neither model's
tokens x vocabulary logits ever exist), once the naive way (both models'
logits, two log-softmaxes and ``torch.nn.functional.kl_div``). Prints both loss
curves (they agree step by step), the time per step and the peak memory a step
adds (sampled from /proc/self/statm on Linux).

    python examples/distill.py            # vocabulary 32000, 8 x 128 tokens a step, 8 steps (a minute or two)
    python examples/distill.py --quick    # a small run (vocabulary 4000, 4 x 32 tokens, 4 steps)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from crossentropy.torch import cross_entropy, linear_distillation_loss

TEMPERATURE = 2.0


def generate_text(sentences: int, seed: int = 0) -> list[str]:
    """Words of sentences drawn from a small grammar about the measures this library computes."""
    rng = random.Random(seed)
    subjects = ["the model", "a student", "the teacher", "every code", "the estimate", "a sample", "the learner"]
    verbs = ["predicts", "assigns", "measures", "compresses", "matches", "covers", "misses", "seeks"]
    objects = ["the rare events", "each token", "the true distribution", "one mode", "every mode", "the entropy"]
    tails = ["in bits", "in nats", "with a softmax", "at a high temperature", "without smoothing", "exactly"]
    words: list[str] = []
    for _ in range(sentences):
        words += f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)} .".split()
    return words


def batches(vocab: int, batch: int, length: int, steps: int) -> list[torch.Tensor]:
    """Token ids of windows of the text (the words numbered in order of appearance, within the vocabulary)."""
    words = generate_text(batch * length * steps // 4 + length)
    ids: dict[str, int] = {}
    tokens = torch.tensor([ids.setdefault(w, len(ids)) for w in words]) % vocab
    g = torch.Generator().manual_seed(0)
    starts = torch.randint(0, len(tokens) - length, (steps, batch), generator=g)
    return [torch.stack([tokens[s : s + length] for s in row.tolist()]) for row in starts]


def gpt2(vocab: int, length: int, layers: int, width: int, seed: int) -> Any:
    """A ``GPT2LMHeadModel`` from a config (transformers is imported here: only the runs need it)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab, n_positions=length, n_embd=width, n_layer=layers, n_head=4, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(config)


def train_teacher(vocab: int, data: list[torch.Tensor], length: int, epochs: int) -> Any:
    """The teacher learns the text (next-token cross-entropy, crossentropy's fused kernel) for a few epochs."""
    teacher = gpt2(vocab, length, layers=4, width=256, seed=1)
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=3e-3)
    for _ in range(epochs):
        for ids in data:
            logits = teacher(ids[:, :-1]).logits
            loss = cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return teacher.eval()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_during(step: Any) -> float:
    """The largest rise of resident memory while ``step()`` runs (MB), sampled every half millisecond."""
    base, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb() - base)
            time.sleep(0.0005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        step()
    finally:
        done.set()
        thread.join()
    return max(peak[0], _rss_mb() - base)


def fused_loss(student: Any, teacher: Any, ids: torch.Tensor) -> torch.Tensor:
    """KL(P_teacher || P_student) from both models' last hidden states and LM heads, over row blocks."""
    hidden = student.transformer(ids).last_hidden_state
    with torch.no_grad():
        teacher_hidden = teacher.transformer(ids).last_hidden_state
    return linear_distillation_loss(
        hidden, student.lm_head.weight, teacher_hidden, teacher.lm_head.weight, temperature=TEMPERATURE
    )


def naive_loss(student: Any, teacher: Any, ids: torch.Tensor) -> torch.Tensor:
    """The same loss the usual way: both models' logits, two log-softmaxes and kl_div (mean over the tokens)."""
    logits = student(ids).logits
    with torch.no_grad():
        teacher_logits = teacher(ids).logits
    vocab = logits.shape[-1]
    log_p_student = (logits / TEMPERATURE).log_softmax(-1).reshape(-1, vocab)
    log_p_teacher = (teacher_logits / TEMPERATURE).log_softmax(-1).reshape(-1, vocab)
    return torch.nn.functional.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)


def distil(way: str, vocab: int, batch: int, length: int, steps: int) -> tuple[list[float], float, float]:
    """One distillation run (in a fresh process): the losses, the best time per step (s), the largest peak (MB).

    Each run trains its teacher the same way from the same seed (so neither run shares memory with the other).
    """
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    data = batches(vocab, batch, length, steps)
    teacher = train_teacher(vocab, data, length, epochs=1 if steps < 8 else 2)
    student = gpt2(vocab, length, layers=2, width=128, seed=2)
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-3)
    loss_of = fused_loss if way == "fused" else naive_loss
    losses: list[float] = []
    best, peak = float("inf"), 0.0
    for ids in data:

        def step(ids: torch.Tensor = ids) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(student, teacher, ids)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))

        start = time.perf_counter()
        peak = max(peak, _peak_during(step))
        best = min(best, time.perf_counter() - start)
    return losses, best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="vocabulary 4000, 4 x 32 tokens a step, 4 steps")
    args = parser.parse_args()
    vocab, batch, length, steps = (4000, 4, 32, 4) if args.quick else (32000, 8, 128, 8)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
        runs = {way: pool.submit(distil, way, vocab, batch, length, steps).result() for way in ("naive", "fused")}
    (naive, naive_time, naive_peak), (fused, fused_time, fused_peak) = runs["naive"], runs["fused"]
    largest = max(abs(a - b) / abs(b) for a, b in zip(fused, naive, strict=True))
    print(f"student 2 x 128 distilled from teacher 4 x 256, vocabulary {vocab}, {batch} x {length} tokens a step")
    print("step  naive KL   fused KL")
    for i, (a, b) in enumerate(zip(naive, fused, strict=True)):
        print(f"{i + 1:>4}  {a:.6f}  {b:.6f}")
    print(f"largest relative difference {largest:.1e}")
    print(f"time per step: {fused_time * 1e3:.0f} ms fused against {naive_time * 1e3:.0f} ms naive")
    print(
        f"peak memory a step adds: {fused_peak:.0f} MB fused against {naive_peak:.0f} MB naive "
        f"({naive_peak - fused_peak:.0f} MB saved)"
    )


if __name__ == "__main__":
    main()
