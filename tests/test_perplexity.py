"""crossentropy perplexity: rolling windows, streamed tokenization, the harness's metrics, the command line.

The oracle is the straightforward computation: the whole text encoded at
once, lm-evaluation-harness's rolling windows (re-implemented below for
clarity from ``lm_eval/utils.py``), the stock model's full logits per window
and a float64 log-softmax. Models and tokenizers are built here (random
weights, a byte-level BPE trained on generated text); nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from crossentropy import InputError
from crossentropy._perplexity import IGNORE, rolling_windows, text_tokens, word_count
from crossentropy.cli import main
from optional import given, optional, st

REL = 1e-6
"""The issue's bound on the relative difference from the unfused computation."""


# --- the harness's windows, as a reference ----------------------------------------------------------


def harness_windows(tokens, prefix, max_seq_len, context_len):
    """``get_rolling_token_windows`` then ``make_disjoint_window`` of lm-evaluation-harness: (context, predicted)."""
    if not tokens:
        return []
    pred_len = max_seq_len - context_len + 1
    first = min(max_seq_len, len(tokens))
    windows = [([prefix, *tokens[: first - 1]], tokens[:first])]
    predicted = first
    while predicted < len(tokens):
        n = min(len(tokens) - predicted, pred_len)
        end = predicted + n
        windows.append((tokens[end - max_seq_len - 1 : end - 1], tokens[end - n : end]))
        predicted += n
    return [(ctx[: len(ctx) - (len(pred) - 1)], pred) for ctx, pred in windows]


def _as_harness(window):
    """Our window as the harness's (context, predicted) pair."""
    scored = window.targets != IGNORE
    n = int(scored.sum())
    inputs = window.inputs.tolist()
    return inputs[: len(inputs) - n + 1], window.targets[scored].tolist()


@given(
    n=st.integers(0, 60),
    context=st.integers(1, 12),
    data=st.data(),
)
def test_rolling_windows_are_the_harness_windows(n, context, data):
    stride = data.draw(st.integers(1, context))
    tokens = list(range(10, 10 + n))
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=5)))
    chunks = [tokens[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    ours = list(rolling_windows(chunks, document=0, prefix=1, context=context, stride=stride))
    assert [_as_harness(w) for w in ours] == harness_windows(tokens, 1, context, context - stride + 1)
    assert all(len(w.inputs) <= context and len(w.inputs) == len(w.targets) for w in ours)
    assert sum(int((w.targets != IGNORE).sum()) for w in ours) == n


@given(st.text(alphabet=" \t\n\u00a0ab", max_size=40), st.lists(st.integers(0, 40), max_size=6))
def test_word_count_streamed_equals_the_harness_count(text, cuts):
    from crossentropy._perplexity.text import WHITESPACE

    assert word_count(text) == len(re.split(r"\s+", text))
    bounds = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)], strict=True)]
    words, ended_blank = 1, False
    for piece in pieces:  # the update of crossentropy._perplexity.engine.run
        words += sum(1 for _ in WHITESPACE.finditer(piece)) - (1 if ended_blank and piece[:1].isspace() else 0)
        ended_blank = piece[-1:].isspace() if piece else ended_blank
    assert words == len(re.split(r"\s+", text))


# --- tokenizers, text and models built here ---------------------------------------------------------

WORDS = [
    "the", "of", "and", "model", "entropy", "token", "cross", "window", "stride", "perplexity", "byte", "word",
    "école", "naïve", "정보", "엔트로피", "loss", "gradient", "a", "in", "to", "is", "42", "3.14", "e=mc²",
]  # fmt: skip


def generated_text(n_lines: int, seed: int = 0) -> str:
    """Zipf-ish words in lines of varying length, some blank lines, double spaces and tabs."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(WORDS) + 1)
    weights /= weights.sum()
    lines = []
    for _ in range(n_lines):
        k = int(rng.integers(0, 14))
        words = rng.choice(WORDS, size=k, p=weights).tolist()
        sep = "  " if rng.random() < 0.1 else ("\t" if rng.random() < 0.05 else " ")
        lines.append(sep.join(words) + ("." if k and rng.random() < 0.5 else ""))
    return "\n".join(lines) + "\n"


def _byte_level_bpe(vocab_size: int = 600):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator([generated_text(400, seed=s) for s in range(3)], trainer=trainer)
    return backend


def _metaspace_bpe(vocab_size: int = 600):
    """A SentencePiece-style BPE: spaces become ▁ and every input gets a leading ▁ (prepend_scheme "first")."""
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE(byte_fallback=False, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=["<unk>", "<s>", "</s>"])
    backend.train_from_iterator([generated_text(400, seed=s) for s in range(3)], trainer=trainer)
    return backend


def _offsets_encoder(backend):
    def encode(text):
        e = backend.encode(text, add_special_tokens=False)
        return e.ids, e.offsets

    return encode


@pytest.mark.parametrize("make", [_byte_level_bpe, _metaspace_bpe])
@pytest.mark.parametrize("piece", [7, 64, 1000])
def test_streamed_tokens_equal_the_whole_text_tokens(make, piece):
    backend = make()
    text = generated_text(120, seed=9)
    pieces = [text[i : i + piece] for i in range(0, len(text), piece)]
    streamed = [t for chunk in text_tokens(pieces, _offsets_encoder(backend)) for t in chunk]
    whole = backend.encode(text, add_special_tokens=False).ids
    assert streamed == whole
    if make is _metaspace_bpe and piece < len(text):  # encoding the pieces on their own would not do
        lines = text.splitlines(keepends=True)
        naive = [t for i in range(0, len(lines), 10) for t in backend.encode("".join(lines[i : i + 10])).ids]
        assert naive != whole


def test_a_line_longer_than_the_carry_limit_is_cut_and_still_complete():
    backend = _byte_level_bpe()
    text = "x" * 500
    pieces = [text[i : i + 50] for i in range(0, len(text), 50)]
    streamed = [t for chunk in text_tokens(pieces, _offsets_encoder(backend), max_carry=120) for t in chunk]
    assert backend.decode(streamed) == text


torch = optional("torch")
transformers = optional("transformers")


def _tokenizer():
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(), bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def _llama(vocab: int = 32000, positions: int = 64, *, hidden: int = 256, layers: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=positions,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return transformers.LlamaForCausalLM(config).eval()


def _gemma2():
    torch.manual_seed(0)
    config = transformers.Gemma2Config(
        vocab_size=32000,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=64,
        final_logit_softcapping=5.0,
    )
    model = transformers.Gemma2ForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    return model


@pytest.fixture(scope="module")
def tokenizer():
    return _tokenizer()


@pytest.fixture(scope="module")
def llama():
    return _llama()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, llama, tokenizer):
    path = tmp_path_factory.mktemp("model")
    llama.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def unfused_nll(model, tokenizer, text, context, stride):
    """The straightforward computation: whole-text ids, the harness's windows, full logits, float64 log-softmax."""
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    total = 0.0
    with torch.no_grad():
        for ctx, pred in harness_windows(tokens, tokenizer.bos_token_id, context, context - stride + 1):
            inputs = torch.tensor([ctx + pred[:-1]])
            logits = model(input_ids=inputs).logits[0].to(torch.float64)
            logp = torch.log_softmax(logits, -1)[-len(pred) :]
            total -= float(logp.gather(1, torch.tensor(pred)[:, None]).sum())
    return total, len(tokens)


def _check_metrics(m, nll, tokens, text):
    n_bytes, n_words = len(text.encode("utf-8")), len(re.split(r"\s+", text))
    assert (m["tokens"], m["bytes"], m["words"]) == (tokens, n_bytes, n_words)
    assert m["nll_sum"] == pytest.approx(nll, rel=REL)
    assert m["cross_entropy_nats"] == pytest.approx(nll / tokens, rel=REL)
    assert m["cross_entropy_bits"] == pytest.approx(nll / tokens / math.log(2), rel=REL)
    assert m["token_perplexity"] == pytest.approx(math.exp(nll / tokens), rel=REL)
    assert m["bits_per_byte"] == pytest.approx(nll / n_bytes / math.log(2), rel=REL)
    assert m["byte_perplexity"] == pytest.approx(math.exp(nll / n_bytes), rel=REL)
    assert m["word_perplexity"] == pytest.approx(math.exp(nll / n_words), rel=REL)


@pytest.mark.parametrize(("lines", "context", "stride", "batch_size"), [(60, 64, 64, 1), (16, 48, 16, 3)])
@pytest.mark.slow
def test_perplexity_equals_the_unfused_computation(
    llama, tokenizer, tmp_path, monkeypatch, lines, context, stride, batch_size
):
    from crossentropy._perplexity import engine
    from crossentropy.transformers import perplexity

    text = generated_text(lines, seed=3)
    path = tmp_path / "small.txt"
    path.write_text(text, encoding="utf-8")
    nll, tokens = unfused_nll(llama, tokenizer, text, context, stride)
    monkeypatch.setattr(engine, "PIECE_BYTES", 97)  # the file is read, decoded and encoded in many pieces
    report = perplexity(llama, path, tokenizer=tokenizer, context=context, stride=stride, batch_size=batch_size)
    assert [(d.name, d.file, d.line) for d in report.documents] == [(str(path), str(path), None)]  # one document
    _check_metrics(report.total.metrics(), nll, tokens, text)


@pytest.mark.slow
def test_perplexity_of_a_soft_capped_model_equals_the_unfused_computation(tokenizer, tmp_path):
    from crossentropy.transformers import perplexity

    model = _gemma2()
    text = generated_text(30, seed=4)
    path = tmp_path / "small.txt"
    path.write_text(text, encoding="utf-8")
    nll, tokens = unfused_nll(model, tokenizer, text, 64, 32)
    report = perplexity(model, path, tokenizer=tokenizer, context=64, stride=32)
    _check_metrics(report.total.metrics(), nll, tokens, text)


@pytest.mark.slow
def test_jsonl_documents_are_scored_one_by_one(llama, tokenizer, tmp_path):
    from crossentropy.transformers import perplexity

    docs = [generated_text(8, seed=s) for s in range(3)] + [""]
    path = tmp_path / "docs.jsonl"
    lines = [json.dumps({"id": f"doc{i}", "text": d}, ensure_ascii=False) for i, d in enumerate(docs)]
    path.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", encoding="utf-8")
    report = perplexity(llama, path, tokenizer=tokenizer, context=32, batch_size=4)
    assert [d.name for d in report.documents] == ["doc0", "doc1", "doc2", "doc3"]
    for doc, text in zip(report.documents[:3], docs, strict=False):
        nll, tokens = unfused_nll(llama, tokenizer, text, 32, 32)
        _check_metrics(doc.metrics(), nll, tokens, text)
    empty = report.documents[3].metrics()
    assert (empty["tokens"], empty["bytes"], empty["words"]) == (0, 0, 1)
    assert report.empty == [report.documents[3]]  # listed; its measures do not exist (not NaN)
    assert all(empty[m] is None for m in ("token_perplexity", "bits_per_byte", "word_perplexity"))
    total = report.total.metrics()
    assert total["tokens"] == sum(d.tokens for d in report.documents)
    assert total["words"] == sum(len(re.split(r"\s+", d)) for d in docs)
    assert total["word_perplexity"] == pytest.approx(math.exp(sum(d.nll for d in report.documents) / total["words"]))


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (b"caf\xc3\xa9 \xff more", {}, "byte 6"),
        (b'{"text": "a"}\nnot json\n', {"jsonl": True}, "line 2"),
        (b'{"body": "a"}\n', {"jsonl": True}, "'text'"),
        (b"some text", {"stride": 100, "context": 32}, "stride"),
        (b"some text", {"context": 1000}, "context"),
    ],
)
def test_bad_input_is_an_input_error_that_says_where(llama, tokenizer, tmp_path, content, kwargs, message):
    from crossentropy.transformers import perplexity

    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)):
        perplexity(llama, path, tokenizer=tokenizer, **kwargs)


def test_perplexity_needs_a_tokenizer_and_a_supported_model(llama, tokenizer, tmp_path):
    from crossentropy.transformers import perplexity

    path = tmp_path / "t.txt"
    path.write_text("hello world\n")
    with pytest.raises(InputError, match="tokenizer"):
        perplexity(llama, path)
    bert = transformers.BertForMaskedLM(
        transformers.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    )
    with pytest.raises(InputError, match="Llama"):
        perplexity(bert, path, tokenizer=tokenizer)


@pytest.mark.slow
def test_cli_json_equals_the_library(model_dir, llama, tokenizer, tmp_path, capsys):
    from crossentropy.transformers import perplexity

    text = generated_text(40, seed=5)
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    code = main(["perplexity", str(model_dir), str(path), "--context", "32", "--stride", "16", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    expected = perplexity(llama, path, tokenizer=tokenizer, context=32, stride=16).as_dict()  # what was saved
    assert out.keys() == expected.keys()
    assert out["model"] == str(model_dir)
    for key in ("tokens", "bytes", "words", "context", "stride", "prefix_token", "files", "tokenizer", "vocab_size"):
        assert out[key] == expected[key]
    for key in ("cross_entropy_nats", "token_perplexity", "bits_per_byte", "word_perplexity"):
        assert out[key] == pytest.approx(expected[key], rel=1e-12)


@pytest.mark.slow
def test_cli_table_per_document_and_progress(model_dir, tmp_path, capsys):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": generated_text(4, seed=s)}) for s in range(2)) + "\n")
    assert main(["perplexity", str(model_dir), str(path), "--context", "32", "--progress"]) == 0
    out = capsys.readouterr().out
    assert "bits per byte" in out
    assert "per document" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}", "{text}"], "is not a directory"),
        (["{model}", "{text}", "--stride", "0"], "stride"),
        (["{model}", "{missing}"], "cannot read"),
    ],
)
def test_cli_errors_are_one_line_and_status_2(model_dir, tmp_path, capsys, args, message):
    text = tmp_path / "t.txt"
    text.write_text("hello world\n")
    names = {"model": str(model_dir), "text": str(text), "missing": str(tmp_path / "missing")}
    code = main(["perplexity", *(a.format(**names) for a in args)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
