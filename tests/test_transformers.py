"""crossentropy.transformers.patch: the fused loss inside Hugging Face causal LMs equals the stock one.

Models are built here from configs with random weights (nothing is
downloaded): hidden size 256, two layers, V = 32000 (and V = 128256 for a
Llama), as the issue asks. Each family trains a stock copy and a patched
copy side by side for several optimizer steps, with right padding, ignored
labels and gradient accumulation normalised by ``num_items_in_batch`` as
``Trainer`` does, comparing every loss and every parameter's gradient.
"""

from __future__ import annotations

import copy
import inspect
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from crossentropy import InputError  # noqa: E402
from crossentropy.transformers import is_patched, patch, unpatch  # noqa: E402

pytestmark = pytest.mark.slow  # Hugging Face models are built and trained

LOSS_RTOL = 1e-5
"""The issue's bound on the relative difference of the float32 losses."""

GRAD_RTOL = 1e-5
"""Bound on ``||g_patched - g_stock|| / ||g_stock||`` for each parameter's gradient."""

V = 32000
COMMON = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4}


def _config(family: str, vocab: int = V):
    """A small config of ``family`` (Gemma 2 and 3 with a low final-logit cap, so that the cap bends the logits)."""
    rope = {**COMMON, "vocab_size": vocab, "num_key_value_heads": 2, "max_position_embeddings": 128}
    special = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if family == "llama":
        return transformers.LlamaConfig(**rope, **special)
    if family == "mistral":
        return transformers.MistralConfig(**rope, **special, sliding_window=None)
    if family == "qwen2":
        return transformers.Qwen2Config(**rope, **special)
    if family == "qwen3":
        return transformers.Qwen3Config(**rope, **special, head_dim=64)
    if family == "gemma":
        return transformers.GemmaConfig(**rope, **special, head_dim=64)
    if family == "gemma2":
        return transformers.Gemma2Config(**rope, **special, head_dim=64, final_logit_softcapping=5.0)
    if family == "gemma3":
        return transformers.Gemma3TextConfig(**rope, **special, head_dim=64, final_logit_softcapping=5.0)
    assert family == "gpt2"
    return transformers.GPT2Config(vocab_size=vocab, n_embd=256, n_layer=2, n_head=4, n_positions=128, **special)


FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gpt2"]


def _model(family: str, vocab: int = V, seed: int = 0):
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(_config(family, vocab))
    if family in ("gemma2", "gemma3"):  # random heads give logits of ~0.1: scale them up to where tanh bends
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(20.0)
    return model


def _micro_batches(vocab: int, seed: int, count: int = 2, batch: int = 2, length: int = 24):
    """Right-padded batches whose labels ignore the padding and a random tenth of the other tokens."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        ids = torch.randint(3, vocab, (batch, length), generator=g)
        lengths = torch.randint(length // 2, length + 1, (batch,), generator=g)
        mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
        ids = ids.masked_fill(mask == 0, 0)
        labels = ids.masked_fill(mask == 0, -100)
        labels = labels.masked_fill(torch.rand(batch, length, generator=g) < 0.1, -100)
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def _items(batches) -> torch.Tensor:
    """What ``Trainer`` passes as ``num_items_in_batch``: the non-ignored labels after the shift."""
    return sum((b["labels"][:, 1:] != -100).sum() for b in batches)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _train_side_by_side(stock, fused, steps: int, vocab: int, seed: int = 1):
    """Stock and patched copies take the same SGD steps; every loss and gradient is compared; worst errors back."""
    opt_stock = torch.optim.SGD(stock.parameters(), lr=0.5)
    opt_fused = torch.optim.SGD(fused.parameters(), lr=0.5)
    worst_loss = worst_grad = 0.0
    for step in range(steps):
        batches = _micro_batches(vocab, seed + step)
        items = _items(batches)
        for k, batch in enumerate(batches):
            torch.manual_seed(100 * step + k)  # the same dropout masks in both models
            a = stock(**batch, num_items_in_batch=items)
            torch.manual_seed(100 * step + k)
            b = fused(**batch, num_items_in_batch=items)
            assert b.logits is None
            worst_loss = max(worst_loss, abs(b.loss.item() - a.loss.item()) / abs(a.loss.item()))
            a.loss.backward()
            b.loss.backward()
        for (name, p), q in zip(stock.named_parameters(), fused.parameters(), strict=True):
            assert (p.grad is None) == (q.grad is None), name
            if p.grad is not None and p.grad.norm() > 0:
                worst_grad = max(worst_grad, _relative(q.grad, p.grad))
        opt_stock.step()
        opt_fused.step()
        opt_stock.zero_grad()
        opt_fused.zero_grad()
    return worst_loss, worst_grad


@pytest.mark.parametrize("family", FAMILIES)
def test_patched_training_matches_stock(family):
    stock = _model(family)
    fused = patch(copy.deepcopy(stock))
    worst_loss, worst_grad = _train_side_by_side(stock, fused, steps=3, vocab=V)
    assert worst_loss <= LOSS_RTOL
    assert worst_grad <= GRAD_RTOL
    for p, q in zip(stock.parameters(), fused.parameters(), strict=True):  # the weights after three steps
        assert _relative(q.detach(), p.detach()) <= GRAD_RTOL


def test_patched_training_matches_stock_with_a_128k_vocabulary():
    stock = _model("llama", vocab=128256)
    fused = patch(copy.deepcopy(stock))
    worst_loss, worst_grad = _train_side_by_side(stock, fused, steps=2, vocab=128256)
    assert worst_loss <= LOSS_RTOL
    assert worst_grad <= GRAD_RTOL


def _gpt2(vocab: int = 1000, **kwargs):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=vocab, n_embd=64, n_layer=1, n_head=2, n_positions=64, bos_token_id=1, eos_token_id=2, **kwargs
    )
    return transformers.GPT2LMHeadModel(config)


def test_evaluation_mode_returns_the_stock_logits_and_loss():
    stock = _model("gemma2", vocab=1000).eval()
    fused = patch(copy.deepcopy(stock))
    batch = _micro_batches(1000, 7)[0]
    a, b = stock(**batch), fused(**batch)
    torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=0)
    assert abs(b.loss.item() - a.loss.item()) <= LOSS_RTOL * abs(a.loss.item())
    assert fused(**batch, return_logits=False).logits is None
    fused.train()
    assert fused(**batch).logits is None
    assert fused(**batch, return_logits=True).logits.shape == (2, 24, 1000)
    assert patch(_model("gemma", vocab=1000), return_logits=True).train()(**batch).logits is not None


def test_calls_without_labels_and_generation_are_the_stock_ones():
    stock = _gpt2().eval()
    fused = patch(copy.deepcopy(stock))
    ids = torch.randint(3, 1000, (1, 10), generator=torch.Generator().manual_seed(0))
    a, b = stock(input_ids=ids), fused(input_ids=ids)
    assert b.loss is None
    torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=0)
    generated = fused.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0)
    torch.testing.assert_close(generated, stock.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0))


def test_loss_options_positional_arguments_and_tuples():
    stock = _gpt2().train()
    fused = patch(copy.deepcopy(stock))
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 1000, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    shifted = torch.randint(3, 1000, (2, 12), generator=g).masked_fill(ids < 300, 7)

    def same(call):
        torch.manual_seed(5)
        a = call(stock)
        torch.manual_seed(5)
        b = call(fused)
        loss_a, loss_b = (a[0], b[0]) if isinstance(a, tuple) else (a.loss, b.loss)
        assert abs(loss_b.item() - loss_a.item()) <= LOSS_RTOL * abs(loss_a.item())
        return a, b

    same(lambda m: m(ids, None, mask, labels=ids))  # positional input_ids, cache, attention_mask
    same(lambda m: m(input_ids=ids, labels=ids, shift_labels=shifted))
    same(lambda m: m(input_ids=ids, labels=ids, ignore_index=7, num_items_in_batch=5))
    _, b = same(lambda m: m(input_ids=ids, labels=ids, return_dict=False))
    assert isinstance(b, tuple)
    assert b[0].ndim == 0
    with pytest.raises(TypeError, match="multiple values"):
        fused(ids, input_ids=ids, labels=ids)


def test_an_out_of_range_label_raises_as_in_torch():
    fused = patch(_gpt2())
    ids = torch.randint(3, 1000, (1, 6))
    labels = ids.clone()
    labels[0, 3] = 1000
    with pytest.raises(IndexError):
        fused(input_ids=ids, labels=labels)


def test_a_deep_copy_of_a_patched_model_runs_the_copy():
    model = patch(_gpt2())
    twin = copy.deepcopy(model)
    assert is_patched(twin)
    with torch.no_grad():
        twin.get_output_embeddings().weight.mul_(3.0)
    ids = torch.randint(3, 1000, (1, 8), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    fused = twin(input_ids=ids, labels=ids).loss
    torch.manual_seed(0)
    stock = unpatch(twin)(input_ids=ids, labels=ids).loss
    assert abs(fused.item() - stock.item()) <= LOSS_RTOL * abs(stock.item())
    torch.manual_seed(0)
    assert abs(model(input_ids=ids, labels=ids).loss.item() - stock.item()) > 1e-3


def test_unpatch_restores_and_patch_is_idempotent():
    model = _gpt2()
    original = model.forward
    assert patch(patch(model)) is model
    assert is_patched(model)
    assert model.forward.__wrapped__ == original
    assert inspect.signature(model.forward) == inspect.signature(original)
    assert unpatch(model) is model
    assert not is_patched(model)
    assert "forward" not in vars(model)
    assert unpatch(model) is model


@pytest.mark.parametrize(
    "make",
    [
        lambda: transformers.BertForMaskedLM(
            transformers.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
        ),
        lambda: transformers.OPTForCausalLM(
            transformers.OPTConfig(
                vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32
            )
        ),
        lambda: torch.nn.Linear(2, 2),
        lambda: torch.compile(_gpt2()),
    ],
)
def test_unsupported_models_are_refused_with_the_supported_families(make):
    with pytest.raises(InputError, match=r"Llama \(LlamaForCausalLM\).*Gemma 2.*GPT-2") as info:
        patch(make())
    assert "model" in str(info.value)


def test_a_custom_loss_function_is_refused():
    model = _gpt2()
    model.loss_function = lambda logits, labels, **kwargs: logits.sum()
    with pytest.raises(InputError, match="loss_function"):
        patch(model)


def test_autocast_bfloat16_matches_the_stock_loss_and_gradients():
    stock = _model("qwen2", vocab=1000)
    fused = patch(copy.deepcopy(stock))
    batch = _micro_batches(1000, 11)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = stock(**batch), fused(**batch)
    a.loss.backward()
    b.loss.backward()
    assert abs(b.loss.item() - a.loss.item()) <= 2**-7 * abs(a.loss.item())  # bfloat16 logits in both
    head_a, head_b = stock.get_output_embeddings().weight.grad, fused.get_output_embeddings().weight.grad
    assert _relative(head_b, head_a) <= 2e-2


def _wrap_like_accelerate(model):
    """What ``accelerate``'s ``prepare`` does to a model under ``mixed_precision="bf16"`` on the CPU: its forward
    becomes the stock one under bfloat16 autocast, with float32 outputs."""
    from types import MethodType

    convert_outputs_to_fp32 = pytest.importorskip("accelerate.utils").convert_outputs_to_fp32
    model.forward = MethodType(torch.autocast("cpu", dtype=torch.bfloat16)(model.forward.__func__), model)
    model.forward = MethodType(convert_outputs_to_fp32(model.forward.__func__), model)
    return model


@pytest.mark.parametrize("family", ["qwen2", "gemma2", "gpt2"])
def test_a_forward_wrapped_before_patching_keeps_its_wrapper(family):
    """Issue 26: patching a model whose forward accelerate had wrapped lost the wrapper (autocast silently off)
    on labelled calls. The fused loss now runs inside the wrapper, and the model is left as it was."""
    stock = _wrap_like_accelerate(_model(family, vocab=1000))
    fused = patch(_wrap_like_accelerate(_model(family, vocab=1000)))
    head = fused.get_output_embeddings()
    batch = _micro_batches(1000, 11)[0]

    def run(model, **options):
        torch.manual_seed(7)  # the same dropout masks (GPT-2 has dropout) in every call
        return model(**batch, **options)

    a, b = run(stock), run(fused)
    assert b.logits is None
    assert abs(b.loss.item() - a.loss.item()) <= 2**-9 * abs(a.loss.item())
    a.loss.backward()
    b.loss.backward()
    assert _relative(head.weight.grad, stock.get_output_embeddings().weight.grad) <= 2e-2
    assert fused.get_output_embeddings() is head
    assert "_loss_function" not in vars(fused)
    unwrapped = run(patch(_model(family, vocab=1000)))  # the same weights without the wrapper: autocast off
    assert abs(unwrapped.loss.item() - a.loss.item()) > abs(b.loss.item() - a.loss.item())
    with torch.no_grad():
        eval_mode = run(fused.eval())  # logits wanted: the wrapped stock forward itself
        assert eval_mode.logits.dtype == torch.float32
        assert eval_mode.loss.item() == run(stock.eval()).loss.item()
        as_tuple = run(fused.train(), return_dict=False)
    assert len(as_tuple) == len(b.to_tuple())
    assert as_tuple[0].item() == b.loss.item()


@pytest.mark.parametrize("returned", ["hidden states", "logits"])
def test_a_fully_ignored_batch_with_no_items_has_zero_gradients_as_stock(returned):
    """Issue 26: labels all -100 with ``num_items_in_batch=0`` gave NaN gradients (one such step poisons the
    weights); stock gives a NaN loss and zero gradients."""
    stock = _model("llama", vocab=1000)
    fused = patch(copy.deepcopy(stock), return_logits=returned == "logits")
    batch = dict(_micro_batches(1000, 12)[0])
    batch["labels"] = torch.full_like(batch["labels"], -100)
    for model in (stock, fused):
        out = model(**batch, num_items_in_batch=torch.tensor(0))
        assert torch.isnan(out.loss)
        out.loss.backward()
    for (name, p), q in zip(stock.named_parameters(), fused.parameters(), strict=True):
        if p.grad is not None:
            assert torch.equal(q.grad, p.grad), name
            assert not q.grad.any(), name


def test_compiled_patched_model_matches_eager():
    eager = _model("llama", vocab=1000)
    compiled_model = patch(copy.deepcopy(eager))
    patch(eager)
    compiled = torch.compile(compiled_model, backend="aot_eager", fullgraph=True)
    for step, batch in enumerate(_micro_batches(1000, 21, count=2)):
        a, b = eager(**batch), compiled(**batch)
        assert b.logits is None
        assert abs(b.loss.item() - a.loss.item()) <= LOSS_RTOL * abs(a.loss.item()), step
        a.loss.backward()
        b.loss.backward()
    for p, q in zip(eager.parameters(), compiled_model.parameters(), strict=True):
        assert _relative(q.grad, p.grad) <= GRAD_RTOL


def test_trainer_with_gradient_accumulation_matches_stock(tmp_path):
    pytest.importorskip("accelerate")
    stock = _model("llama", vocab=1000)
    fused = patch(copy.deepcopy(stock))
    batches = _micro_batches(1000, 31, count=4, batch=1)
    data = [{k: v[0] for k, v in b.items()} for b in batches]

    def train(model, out):
        args = transformers.TrainingArguments(
            output_dir=str(out),
            per_device_train_batch_size=1,
            gradient_accumulation_steps=2,
            max_steps=2,
            learning_rate=1e-3,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            seed=0,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
        trainer.train()
        return [h["loss"] for h in trainer.state.log_history if "loss" in h]

    losses_stock, losses_fused = train(stock, tmp_path / "stock"), train(fused, tmp_path / "fused")
    assert len(losses_fused) == 2
    for a, b in zip(losses_stock, losses_fused, strict=True):
        assert abs(b - a) <= LOSS_RTOL * abs(a)
    for p, q in zip(stock.parameters(), fused.parameters(), strict=True):
        assert _relative(q.detach(), p.detach()) <= GRAD_RTOL


def test_importing_crossentropy_imports_neither_transformers_nor_torch():
    code = "import sys, crossentropy; print(any(m in sys.modules for m in ('transformers', 'torch', 'tokenizers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_bfloat16_model_reports_a_float32_loss_like_stock():
    stock = _model("llama", vocab=1000).to(torch.bfloat16)
    fused = patch(copy.deepcopy(stock))
    batch = next(iter(_micro_batches(1000, 41, count=1)))
    a, b = stock(**batch), fused(**batch)
    assert a.loss.dtype == b.loss.dtype == torch.float32
    assert abs(b.loss.item() - a.loss.item()) <= 1e-2 * abs(a.loss.item())
