"""perplexity's token statistics (issue 30, item 6): mean entropy, top-1 accuracy and the next-token calibration.

The oracle is the straightforward computation of ``test_perplexity``: the
whole text encoded at once, lm-evaluation-harness's rolling windows, the
stock model's full logits per window, and in float64 the softmax's entropy,
its largest probability and its argmax, binned as ``crossentropy score``
bins its rows. The models are built here from configs, their LM heads fitted
for a few steps on generated text (nothing is downloaded), so that their
first choice is right now and then and their confidence spreads over the
bins. The records merge and bootstrap as ``test_perplexity_documents``
checks for every field of the record; here, what is particular to the token
statistics: old records, inconsistent bins, the intervals of a ratio of sums
over bins, and the HTML report.
"""

from __future__ import annotations

import html
import html.parser
import json
import math
import re

import numpy as np
import pytest

from crossentropy import InputError
from crossentropy._formatting import jsonable
from crossentropy._perplexity import DocumentScore, PerplexityReport, read_records
from crossentropy._perplexity.calibration import reliability
from crossentropy._perplexity.fields import CALIBRATION_BINS, RECORD, TOKEN_STATISTICS
from optional import optional
from test_perplexity import _byte_level_bpe, _llama, generated_text, harness_windows
from test_perplexity_documents import _records, _report, direct_replicates, write_jsonl

torch = optional("torch")
transformers = optional("transformers")


# --- models whose predictions are sometimes right --------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(), bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def fit_head(model, tokenizer, *, steps=60, seed=11):
    """A few Adam steps on the LM head alone (the backbone frozen): a bigram-like model, confident and often wrong."""
    ids = torch.tensor([tokenizer(generated_text(100, seed=seed), add_special_tokens=False)["input_ids"]])
    n = ids.shape[1]
    with torch.no_grad():
        hidden = torch.cat(
            [model.base_model(input_ids=ids[:, s : s + 64]).last_hidden_state[0] for s in range(0, n, 64)]
        )
    hidden, targets = hidden[: n - 1], ids[0, 1:]
    weight = model.get_output_embeddings().weight
    cap = getattr(model.config, "final_logit_softcapping", None)
    optimizer = torch.optim.Adam([weight], lr=0.05)
    for _ in range(steps):
        logits = hidden @ weight.T
        logits = cap * torch.tanh(logits / cap) if cap else logits
        loss = torch.nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _gemma2(vocab):
    torch.manual_seed(0)
    config = transformers.Gemma2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=64,
        final_logit_softcapping=5.0,
    )
    return transformers.Gemma2ForCausalLM(config)


@pytest.fixture(scope="module")
def llama(tokenizer):
    return fit_head(_llama(len(tokenizer), hidden=64, layers=1), tokenizer)


@pytest.fixture(scope="module")
def gemma2(tokenizer):
    return fit_head(_gemma2(len(tokenizer)), tokenizer)


def unfused_statistics(model, tokenizer, text, context, stride):
    """A document's sums, straightforwardly: whole-text ids, the harness's windows, full logits, float64 softmax."""
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    nll = entropy = 0.0
    count, right, confidence = np.zeros(15, np.int64), np.zeros(15, np.int64), np.zeros(15)
    with torch.no_grad():
        for ctx, pred in harness_windows(tokens, tokenizer.bos_token_id, context, context - stride + 1):
            logits = model(input_ids=torch.tensor([ctx + pred[:-1]])).logits[0].to(torch.float64)[-len(pred) :]
            log_q = torch.log_softmax(logits, -1)
            q = log_q.exp()
            target = torch.tensor(pred)
            nll -= float(log_q.gather(1, target[:, None]).sum())
            entropy += float(torch.special.entr(q).sum())
            top1, first = q.max(-1)
            for p, hit in zip(top1.tolist(), (first == target).tolist(), strict=True):
                k = min(int(p * 15), 14)
                count[k] += 1
                right[k] += hit
                confidence[k] += p
    return {
        "tokens": len(tokens),
        "nll_sum": nll,
        "entropy_sum": entropy,
        "calibration_tokens": tuple(count.tolist()),
        "calibration_correct": tuple(right.tolist()),
        "calibration_confidence": tuple(confidence.tolist()),
    }


def _check_sums(got, want):
    """The counts exactly; the float sums to 1e-6 relative (float32 logits against float64 arithmetic)."""
    for name in ("tokens", "calibration_tokens", "calibration_correct"):
        assert got[name] == want[name], name
    assert got["nll_sum"] == pytest.approx(want["nll_sum"], rel=1e-6)
    assert got["entropy_sum"] == pytest.approx(want["entropy_sum"], rel=1e-6)
    assert got["calibration_confidence"] == pytest.approx(want["calibration_confidence"], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("family", ["llama", "gemma2"])
@pytest.mark.parametrize(("context", "stride", "batch_size"), [(64, 64, 1), (48, 16, 3)])
def test_the_statistics_equal_the_unfused_float64_computation(
    request, tokenizer, tmp_path, family, context, stride, batch_size
):
    from crossentropy.transformers import perplexity

    model = request.getfixturevalue(family)
    docs = [generated_text(3 + 4 * i, seed=40 + i) for i in range(3)]
    path = write_jsonl(tmp_path / "docs.jsonl", [(f"d{i}", t) for i, t in enumerate(docs)])
    report = perplexity(model, path, tokenizer=tokenizer, context=context, stride=stride, batch_size=batch_size)
    wants = [unfused_statistics(model, tokenizer, t, context, stride) for t in docs]
    for doc, want in zip(report.documents, wants, strict=True):
        _check_sums(doc.sums, want)
        m = doc.metrics()
        assert m["entropy_nats"] == pytest.approx(want["entropy_sum"] / want["tokens"], rel=1e-6)
        assert m["entropy_bits"] == pytest.approx(want["entropy_sum"] / want["tokens"] / math.log(2), rel=1e-6)
        assert m["top1_accuracy"] == sum(want["calibration_correct"]) / want["tokens"]
        gaps = np.abs(np.array(want["calibration_confidence"]) - np.array(want["calibration_correct"]))
        assert m["ece"] == pytest.approx(gaps.sum() / want["tokens"], rel=1e-6, abs=1e-9)
    total = report.total.metrics()
    tokens = sum(w["tokens"] for w in wants)
    right = sum(sum(w["calibration_correct"]) for w in wants)
    assert total["top1_accuracy"] == right / tokens
    assert 0 < right < tokens  # the fitted head is right now and then
    bins = np.sum([w["calibration_tokens"] for w in wants], axis=0)
    assert np.count_nonzero(bins) >= (3 if family == "gemma2" else 8)  # confidences spread over the bins


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_the_negative_log_likelihood_stays_the_fused_loss(request, backend, dtype, family):
    """perplexity's NLL came from the fused linear + cross-entropy; from the token statistics each token's
    ``lse - logit`` is the same to 2 float32 ulps of the log-sum-exp, the larger of its two terms (1 measured: the
    kernels add the exponentials in their own order), soft cap included. (A loss far below the log-sum-exp can
    then differ by many of its own ulps: the subtraction cancels the leading digits, in either kernel.)"""
    pytest.importorskip("torch")
    from crossentropy import _dispatch, _kernels
    from crossentropy._causal_lm import family_of, head_statistics, linear_loss, softcap_of

    if backend == "cpu" and not _kernels.available():
        pytest.skip("the C kernels are not built")
    if backend == "triton":
        pytest.importorskip("triton")
        if dtype != "float32":
            pytest.skip("Triton's interpreter is slow: float32 only")
    model = request.getfixturevalue(family)
    cap = softcap_of(model, family_of(model))
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=False, dtype=getattr(torch, dtype))
    with torch.no_grad():
        head.weight.copy_(model.get_output_embeddings().weight)
    g = torch.Generator().manual_seed(0)
    for _ in range(3 if backend == "cpu" else 1):  # the slow paths (plain torch, Triton's interpreter) once
        ids = torch.randint(3, model.config.vocab_size, (2, 24), generator=g)
        targets = torch.randint(3, model.config.vocab_size, (48,), generator=g)
        targets[::7] = -100
        with torch.no_grad():
            hidden = model.base_model(input_ids=ids).last_hidden_state.reshape(48, -1).to(head.weight.dtype)
        with _dispatch.use(backend), torch.no_grad():
            loss = linear_loss(hidden, head, targets, ignore_index=-100, softcap=cap, reduction="none")
            logprob, _, _, _, lse = head_statistics(hidden, head, targets, ignore_index=-100, softcap=cap)
        scored = targets != -100
        scale = torch.maximum(lse.abs(), loss.abs())[scored]
        ulp = torch.nextafter(scale, torch.tensor(math.inf)) - scale  # float32 ulps of the larger term
        assert loss.dtype == logprob.dtype == torch.float32
        assert float(((loss[scored] + logprob[scored]).abs() / ulp).max()) <= 2
        assert torch.equal(logprob[~scored], torch.zeros(int((~scored).sum())))


def test_a_head_that_is_not_a_plain_linear_runs_its_own_forward(tokenizer, tmp_path):
    from crossentropy._causal_lm import head_statistics
    from crossentropy.transformers import perplexity

    class Halved(torch.nn.Linear):
        """An LM head whose forward is not ``torch.nn.Linear``'s (as a LoRA or quantised layer's is not)."""

        def forward(self, x):
            return super().forward(x) / 2

    model = _llama(len(tokenizer), hidden=64, layers=1, seed=3)
    head = Halved(64, len(tokenizer), bias=False)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight * 8)
    model.lm_head = head
    text = generated_text(10, seed=6)
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    report = perplexity(model, path, tokenizer=tokenizer, context=32)
    _check_sums(report.documents[0].sums, unfused_statistics(model, tokenizer, text, 32, 32))
    hidden, targets = torch.randn(5, 64), torch.tensor([1, 2, 3, 4, 5])
    halved = head_statistics(hidden, head, targets, ignore_index=-100, softcap=0.0)
    same_weight = torch.nn.Linear(64, len(tokenizer), bias=False)
    with torch.no_grad():
        same_weight.weight.copy_(head.weight)
    plain = head_statistics(hidden, same_weight, targets, ignore_index=-100, softcap=0.0)
    with torch.no_grad():
        want = torch.log_softmax(head(hidden).double(), -1).gather(1, targets[:, None])[:, 0]
    torch.testing.assert_close(halved[0].double(), want, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(plain[0].double(), want, rtol=1e-3)  # the weight alone is not the head


# --- the window sums, and the bins as the score command's ---------------------------------------------------------


def test_window_sums_add_the_scored_tokens_and_bin_the_top1_probability():
    pytest.importorskip("torch")
    from crossentropy._perplexity.model import window_sums

    targets = torch.tensor([[5, -100, 7, 8, 9], [-100, -100, 1, 2, -100]])
    scored = targets != -100
    top1 = torch.tensor([[1.0, 0.9, 0.5, 0.0667, 0.2], [0.3, 0.3, 0.999, 0.01, 0.4]])
    rank = torch.tensor([[1, 3, 2, 1, 1], [1, 1, 1, 4, 1]])
    logprob = -torch.arange(1.0, 11.0).reshape(2, 5)
    entropy = torch.arange(0.5, 5.5, 0.5).reshape(2, 5)
    zero = torch.zeros(())
    stats = tuple(torch.where(scored, x, zero).to(x.dtype) for x in (logprob, entropy, rank, top1))
    sums = window_sums(stats, targets)
    first, second = sums
    assert first["nll_sum"] == 1.0 + 3.0 + 4.0 + 5.0
    assert first["entropy_sum"] == 0.5 + 1.5 + 2.0 + 2.5
    expected_tokens = [0] * 15
    for k in (
        14,
        7,
        1,
        3,
    ):  # 1.0 in the last bin, 0.5 * 15 = 7.5, 0.0667 * 15 = 1.0005, 0.2 * 15 = 3 (float32: 3.0000001)
        expected_tokens[k] += 1
    assert first["calibration_tokens"] == tuple(expected_tokens)
    assert first["calibration_correct"] == tuple(1 if k in (14, 1, 3) else 0 for k in range(15))
    assert first["calibration_confidence"][14] == 1.0
    assert first["calibration_confidence"][7] == 0.5
    assert second["calibration_tokens"] == tuple(1 if k in (14, 0) else 0 for k in range(15))
    assert second["calibration_correct"] == tuple(1 if k == 14 else 0 for k in range(15))
    assert second["nll_sum"] == 8.0 + 9.0
    assert sum(first["calibration_tokens"]) == 4
    assert sum(second["calibration_tokens"]) == 2


def test_the_calibration_is_the_score_commands_on_the_same_predictions():
    """Logits and targets through the token statistics and the record, and as probabilities through the scorer of
    ``crossentropy score`` with 15 bins: the same bins, error and verdict."""
    pytest.importorskip("torch")
    from crossentropy._perplexity.model import window_sums
    from crossentropy.scoring import Layout, ScoreOptions, Scorer
    from crossentropy.torch import token_statistics

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3000, 6)) * 2.5
    truth = np.exp(logits / 1.6)
    truth /= truth.sum(1, keepdims=True)  # the model is sharper than the truth: overconfident
    targets = (truth.cumsum(1) > rng.uniform(size=(3000, 1))).argmax(1)
    stats = token_statistics(torch.from_numpy(logits), torch.from_numpy(targets))
    (sums,) = window_sums(stats, torch.from_numpy(targets)[None, :])
    ours = reliability(DocumentScore("d", sums={"tokens": 3000, **sums}).sums)
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    scorer = Scorer(Layout(num_classes=6, binary=False), ScoreOptions(bins=15))
    scorer.update(targets.astype(np.float64), probabilities)
    theirs = scorer.result()["calibration"]
    assert [b["count"] for b in ours["bins"]] == [b["count"] for b in theirs["bins"]]
    for a, b in zip(ours["bins"], theirs["bins"], strict=True):
        assert (a["lower"], a["upper"], a["reading"]) == (b["lower"], b["upper"], b["reading"])
        for key in ("confidence", "observed"):
            assert a[key] == (None if b[key] is None else pytest.approx(b[key], rel=1e-12))
    assert ours["ece"] == pytest.approx(theirs["ece"], rel=1e-12)
    assert ours["mce"] == pytest.approx(theirs["mce"], rel=1e-12)
    assert (ours["verdict"], theirs["verdict"]) == ("overconfident", "overconfident")
    assert ours["verdict_reason"] == theirs["verdict_reason"].replace("rows", "tokens")
    assert ours["kind"] == "top-1 token"


# --- records: the new sums merge and bootstrap; old and inconsistent records are refused --------------------------


def test_the_intervals_of_the_statistics_are_ratios_of_resampled_sums():
    """Entropy, accuracy and ECE of each replicate from its summed records (the ECE from the summed bins, not a
    mean of per-document ECEs), as a direct NumPy bootstrap computes them."""
    docs = _records(25, 7, empty=2)
    records = list(_report(docs).records())
    ci = _report(docs).intervals(400, seed=3)
    replicates = [r for r in direct_replicates(records, 400, 3) if r is not None]
    for m in ("entropy_nats", "top1_accuracy", "ece"):
        low, high = np.percentile([r[m] for r in replicates], [2.5, 97.5])
        assert ci.bounds[m] == pytest.approx((low, high), rel=1e-12)
    means = np.mean([d.metrics()["ece"] for d in docs if d.tokens])
    assert means != pytest.approx(_report(docs).total.metrics()["ece"], rel=1e-3)  # not the mean over documents


def _simulated_run(seed, *, exponent):
    """200 documents of 500 tokens with top-1 probabilities ``p`` uniform in [1/15, 1], each right with probability
    ``p ** exponent`` (1: perfectly calibrated): the ECE and its 95 % interval from 1000 replicates."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(200):
        p = rng.uniform(1 / 15, 1.0, 500)
        right = rng.random(500) < p**exponent
        k = np.minimum((p * 15).astype(np.int64), 14)
        sums = {
            "tokens": 500,
            "bytes": 2000,
            "words": 100,
            "nll_sum": 1000.0,
            "entropy_sum": 500.0,
            "calibration_tokens": tuple(np.bincount(k, minlength=15).tolist()),
            "calibration_correct": tuple(np.bincount(k[right], minlength=15).tolist()),
            "calibration_confidence": tuple(np.bincount(k, weights=p, minlength=15).tolist()),
        }
        docs.append(DocumentScore(f"d{i}", file="f", line=i + 1, sums=sums))
    report = _report(docs)
    low, high = report.intervals(1000, seed=seed).bounds["ece"]
    return report.total.metrics()["ece"], low, high


def test_the_ece_interval_of_a_calibrated_model_can_lie_above_it():
    """The ECE is a sum of absolute gaps: for a calibrated model the replicates sit at or above the measured error,
    which then falls outside its interval now and then; for a miscalibrated one it does not. The simulation of
    docs/language-models.md, whose figures are checked here."""
    from pathlib import Path

    calibrated = np.array([_simulated_run(seed, exponent=1.0) for seed in range(20)])
    overconfident = np.array([_simulated_run(seed, exponent=1.3) for seed in range(20)])
    inside = [int(np.count_nonzero((r[:, 1] <= r[:, 0]) & (r[:, 0] <= r[:, 2]))) for r in (calibrated, overconfident)]
    assert inside[0] < 20  # the measured error of a calibrated model falls below its interval now and then
    assert np.all(calibrated[:, 0] >= calibrated[:, 1] - 0.001)  # but not far below it
    assert inside[1] == 20
    assert overconfident[:, 0].mean() > 10 * calibrated[:, 0].mean()
    low, high = calibrated[:, 1:].mean(axis=0)
    docs = " ".join((Path(__file__).parents[1] / "docs" / "language-models.md").read_text().split())
    assert (
        f"a perfectly calibrated model gave a mean ECE of {calibrated[:, 0].mean():.4f} with a mean interval of "
        f"[{low:.4f}, {high:.4f}], the measured value outside it {20 - inside[0]} times in 20; an overconfident one "
        f"(right with probability `p^1.3`, a mean ECE of {overconfident[:, 0].mean():.4f}) had the measured value "
        f"inside its interval {inside[1]} times in 20."
    ) in docs


def _old_record():
    """A record as item 4 of issue 30 wrote it: no token statistics (and so none of their measures)."""
    record = next(_report(_records(1, 0)).records())
    drop = {*TOKEN_STATISTICS, *(m.name for m in RECORD.measures if m.group != "perplexity")}
    return {k: v for k, v in record.items() if k not in drop}


def test_a_record_without_token_statistics_is_refused_in_one_line(tmp_path, cli):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(_old_record()) + "\n")
    message = (
        "old.jsonl, line 1: the record has no token statistics (no field 'entropy_sum'): it was written by an "
        "earlier version of crossentropy; score its documents again to merge them"
    )
    with pytest.raises(InputError, match=re.escape(message)):
        read_records([path])
    result = cli("perplexity", "--merge", str(path))
    assert result.code == 2
    assert message in result.error_line
    partly = _old_record() | {"entropy_sum": 1.0}  # not an old record: another field is missing
    path.write_text(json.dumps(partly) + "\n")
    with pytest.raises(InputError, match=r"line 1: the record has no field 'calibration_tokens'$"):
        read_records([path])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["calibration_tokens"].__setitem__(3, r["calibration_tokens"][3] + 1), "bins hold"),
        (lambda r: r["calibration_correct"].__setitem__(14, r["calibration_tokens"][14] + 1), "bin 14 holds"),
        (lambda r: r["calibration_confidence"].__setitem__(0, -0.5), "bin 0 holds"),
        (lambda r: r.__setitem__("calibration_correct", r["calibration_correct"][:14]), "a list of 15 numbers"),
    ],
)
def test_a_record_whose_bins_are_not_one_documents_is_refused(tmp_path, change, message):
    record = next(_report(_records(1, 2)).records())
    change(record)
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=f"r.jsonl, line 1: .*{message}"):
        read_records([path])


def test_reliability_of_no_tokens_has_no_verdict():
    empty = reliability(DocumentScore("e").sums)
    assert (empty["ece"], empty["mce"], empty["verdict"]) == (None, None, None)
    assert empty["verdict_reason"] == "no token was scored"
    assert len(empty["bins"]) == CALIBRATION_BINS
    assert all(b["count"] == 0 and b["confidence"] is None for b in empty["bins"])


# --- the command line: tables, JSON and the HTML report ----------------------------------------------------------


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tokenizer, llama):
    root = tmp_path_factory.mktemp("fitted")
    dirs = {"a": root / "a", "b": root / "b"}
    llama.save_pretrained(dirs["a"])
    fit_head(_llama(len(tokenizer), hidden=64, layers=1, seed=5), tokenizer, seed=12).save_pretrained(dirs["b"])
    for d in dirs.values():
        tokenizer.save_pretrained(d)
    return {k: str(v) for k, v in dirs.items()}


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    return str(
        write_jsonl(root / "docs.jsonl", [(f"doc{i}", generated_text(3 + i % 4, seed=60 + i)) for i in range(8)])
    )


class _Page(html.parser.HTMLParser):
    """The report's elements (tag and class) and images."""

    def __init__(self):
        super().__init__()
        self.tags, self.images = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs).get("class")))
        if tag == "img":
            self.images.append(dict(attrs))


def _parse(page):
    """The page's elements, and its text as read: inline markup dropped, other tags a space, the style left out."""
    parser = _Page()
    parser.feed(page)
    body = page.split("<body>", 1)[1]
    text = re.sub(r"<[^>]+>", " ", re.sub(r"</?(span|b|i)\b[^>]*>", "", body))
    return parser, " ".join(html.unescape(text).split())


def test_cli_json_table_documents_and_report(model_dirs, documents, tmp_path, cli):
    out, report = tmp_path / "records.jsonl", tmp_path / "report.html"
    args = [model_dirs["a"], documents, "--context", "32", "--bootstrap", "200", "--seed", "1"]
    result = cli("perplexity", *args, "--format", "json", "--documents", str(out), "--report", str(report))
    assert result.code == 0, result.err
    assert f"wrote {report}" in result.err
    data = json.loads(result.out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for name in ("entropy_nats", "entropy_bits", "top1_accuracy", "top1_probability", "ece"):
        assert isinstance(data[name], float)
        assert all(name in r and name in d for r, d in zip(records, data["documents"], strict=True))
    for name in ("entropy_nats", "top1_accuracy", "ece"):
        assert data["ci"][name]["low"] <= data["ci"][name]["high"]
    assert data["entropy_bits"] == pytest.approx(data["entropy_nats"] / math.log(2), rel=1e-15)
    assert data["calibration"]["ece"] == data["ece"]
    assert [b["count"] for b in data["calibration"]["bins"]] == data["calibration_tokens"]
    assert sum(data["calibration_tokens"]) == data["tokens"]
    (merged,) = read_records([out])
    assert jsonable(merged.as_dict()) == {k: v for k, v in data.items() if k != "ci"}
    # the table: every measure, and the documents in two tables that fit 80 columns
    table = cli("perplexity", *args)
    assert table.code == 0
    for label in ("mean entropy (nats/token)", "top-1 accuracy", "calibration error (ECE)", "mean top-1 probability"):
        assert label in table.out
    assert "per document: next-token statistics" in table.out
    assert max(len(line) for line in table.out.splitlines()) <= 80
    # the report: the verdict first, the cards, the reliability diagram of the tokens, the documents, the facts
    parser, text = _parse(report.read_text())
    assert [c for t, c in parser.tags if t in ("div", "footer") and c in ("verdict", "headline")][:2] == [
        "verdict",
        "headline",
    ]
    assert f"Calibration: {data['calibration']['verdict']}:" in text
    assert f"{100 * data['top1_accuracy']:.1f} %" in text
    assert "Calibration (top-1 token)" in text
    assert "The number at the foot of each bar is how many tokens the bin holds." in text
    assert len(parser.images) == 1
    assert parser.images[0]["src"].startswith("data:image/svg+xml;base64,")
    assert "95 % intervals" in text
    assert all(f"doc{i}" in text for i in range(8))
    assert f"fingerprint {data['tokenizer']}" in text
    assert "15 equal-width bins of the top-1 token probability" in text


def test_cli_report_of_a_comparison_and_of_a_merge(model_dirs, documents, tmp_path, cli):
    report, records = tmp_path / "compare.html", tmp_path / "both.jsonl"
    args = [model_dirs["a"], documents, "--compare", model_dirs["b"], "--context", "32", "--bootstrap", "100"]
    result = cli("perplexity", *args, "--format", "json", "--report", str(report), "--documents", str(records))
    assert result.code == 0, result.err
    comparison = json.loads(result.out)["comparison"]
    assert comparison["entropy_nats"]["b_better"] is None  # the entropy has no better side
    assert isinstance(comparison["top1_accuracy"]["b_better"], int)
    _, text = _parse(report.read_text())
    assert "B against A" in text
    assert "Calibration of A (top-1 token)" in text
    assert "Calibration of B (top-1 token)" in text
    merged = tmp_path / "merged.html"
    again = cli(
        "perplexity", "--merge", str(records), "--bootstrap", "100", "--report", str(merged), "--format", "json"
    )
    assert again.code == 0, again.err
    assert json.loads(again.out)["comparison"] == comparison
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
    assert stamp.sub("", _parse(merged.read_text())[1]) == stamp.sub("", text)  # the same report, but for its time


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{a}", "{docs}", "--report", "{missing}/r.html"], "cannot write the report {missing}/r.html: no directory"),
        (["--merge", "{old}", "--report", "{tmp}/r.html"], "no token statistics"),
    ],
)
def test_cli_report_errors_are_one_line_before_scoring(
    model_dirs, documents, tmp_path, cli, monkeypatch, args, message
):
    from crossentropy._perplexity import model

    def never(*args, **kwargs):
        raise AssertionError("scored although the report cannot be written")

    monkeypatch.setattr(model, "perplexity", never)
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps(_old_record()) + "\n")
    names = {
        **model_dirs,
        "docs": documents,
        "missing": str(tmp_path / "missing"),
        "old": str(old),
        "tmp": str(tmp_path),
    }
    result = cli("perplexity", *(a.format(**names) for a in args))
    assert result.code == 2
    assert message.format(**names) in result.error_line
    assert not (tmp_path / "r.html").exists()


def test_the_report_of_synthetic_records_reads_without_a_model():
    pytest.importorskip("matplotlib")
    from crossentropy._perplexity_report import DOCUMENTS_SHOWN, render

    docs = _records(DOCUMENTS_SHOWN + 5, 4, empty=1)
    report = PerplexityReport(docs, {"model": "m<1>", "tokenizer": "t", "vocab_size": 9, "context": 8, "stride": 8,
                                     "prefix_token": 1})  # fmt: skip
    payload = report.as_dict() | {"ci": report.intervals(50).as_dict()}
    page = render(payload, generated="2026-01-02 03:04 UTC")
    _, text = _parse(page)
    assert "<h1>Perplexity of m&lt;1&gt;</h1>" in page
    assert f"Documents (the first {DOCUMENTS_SHOWN} of {DOCUMENTS_SHOWN + 5})" in text
    assert f"{DOCUMENTS_SHOWN + 5} documents (1 empty)" in text
    assert "2026-01-02 03:04 UTC" in text
    assert payload["calibration"]["verdict"] in text
