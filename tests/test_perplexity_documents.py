"""Perplexity document by document: records that add up exactly, bootstrap intervals, paired comparisons, merges.

The oracles are direct computations in NumPy on the per-document records: a
bootstrap that indexes the records with the documented draws
(``numpy.random.default_rng(seed).integers(0, n, size=n)`` per replicate) and
adds them up, and ``math.fsum`` for the totals. The engine runs with a
character "tokenizer" and a score that depends on each window alone (no
torch), and the command line with tiny models built here from configs
(nothing is downloaded).
"""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest

from crossentropy import InputError
from crossentropy._formatting import jsonable
from crossentropy._perplexity import (
    IGNORE,
    DocumentScore,
    PerplexityReport,
    paired,
    read_records,
    run,
    tokens_compared,
)
from crossentropy._perplexity.fields import RECORD, Measure, Sum
from optional import given, optional, st
from test_perplexity import _byte_level_bpe, _llama, _metaspace_bpe, generated_text

HEADLINE = ("token_perplexity", "bits_per_byte", "word_perplexity")
SETTINGS = {"model": "fake", "tokenizer": "characters", "vocab_size": 100}


# --- a direct bootstrap in NumPy on the per-document records ----------------------------------------------


def _arrays(records):
    return {k: np.array([r[k] for r in records], dtype=np.float64) for k in ("nll_sum", "tokens", "bytes", "words")}


def _measures(nll, tokens, n_bytes, words):
    return {
        "token_perplexity": math.exp(nll / tokens),
        "bits_per_byte": nll / n_bytes / math.log(2),
        "word_perplexity": math.exp(nll / words),
    }


def direct_replicates(records, replicates, seed):
    """Each replicate's measures: the records indexed by the draws and added up (None for a replicate with no token)."""
    x = _arrays(records)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(replicates):
        i = rng.integers(0, len(records), size=len(records))
        nll, tokens, n_bytes, words = (float(x[k][i].sum()) for k in ("nll_sum", "tokens", "bytes", "words"))
        out.append(_measures(nll, tokens, n_bytes, words) if tokens else None)
    return out


def direct_bootstrap(records, replicates, seed):
    reps = [r for r in direct_replicates(records, replicates, seed) if r is not None]
    return {m: tuple(np.percentile([r[m] for r in reps], [2.5, 97.5])) for m in HEADLINE}


def direct_paired(records_a, records_b, replicates, seed, measures=HEADLINE):
    ra, rb = direct_replicates(records_a, replicates, seed), direct_replicates(records_b, replicates, seed)
    kept = [(a, b) for a, b in zip(ra, rb, strict=True) if a is not None and b is not None]
    out = {}
    for m in measures:
        low, high = np.percentile([b[m] - a[m] for a, b in kept], [2.5, 97.5])
        scored = [(a, b) for a, b in zip(records_a, records_b, strict=True) if a["tokens"] and b["tokens"]]
        better = sum(1 for a, b in scored if b[m] < a[m])
        out[m] = (float(low), float(high), better, len(scored))
    return out


def _records(n, seed, *, empty=0):
    """Documents with random sums (``empty`` of them without a token), as DocumentScores."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        tokens = 0 if i < empty else int(rng.integers(1, 400))
        sums = {
            "tokens": tokens,
            "bytes": tokens * int(rng.integers(2, 6)),
            "words": tokens // 3 + 1,
            "nll_sum": float(tokens * rng.uniform(1.0, 4.0)),
        }
        docs.append(DocumentScore(f"doc{i}", file="d.jsonl", line=i + 1, sums=sums))
    return docs


def _report(docs, **settings):
    return PerplexityReport(docs, {**SETTINGS, "context": 16, "stride": 16, "prefix_token": 1, **settings})


@pytest.mark.parametrize(("n", "empty", "seed"), [(2, 0, 0), (7, 0, 3), (40, 5, 11), (3, 1, 2)])
def test_bootstrap_equals_a_direct_numpy_bootstrap_on_the_records(n, empty, seed):
    report = _report(_records(n, seed, empty=empty))
    records = list(report.records())
    ci = report.intervals(300, seed=seed)
    expected = direct_bootstrap(records, 300, seed)
    for m in HEADLINE:
        assert ci.bounds[m] == pytest.approx(expected[m], rel=1e-12)
    assert (ci.documents, ci.replicates, ci.seed) == (n, 300, seed)
    assert ci.used == sum(r is not None for r in direct_replicates(records, 300, seed))


@pytest.mark.parametrize("tokens", [True, False])
def test_paired_comparison_equals_a_direct_numpy_paired_bootstrap(tokens):
    a = _records(30, 1, empty=2)
    b = [DocumentScore(d.name, file=d.file, line=d.line, sums=dict(d.sums)) for d in a]
    rng = np.random.default_rng(5)
    for d in b:
        d.sums["nll_sum"] *= float(rng.uniform(0.9, 1.05))
    comparison = paired(a, b, 400, seed=9, tokens=tokens)
    compared = HEADLINE if tokens else ("bits_per_byte", "word_perplexity")
    assert list(comparison.differences) == list(compared)
    expected = direct_paired(list(_report(a).records()), list(_report(b).records()), 400, 9, compared)
    total_a, total_b = _report(a).total.metrics(), _report(b).total.metrics()
    for m in compared:
        d = comparison.differences[m]
        low, high, better, scored = expected[m]
        assert (d.low, d.high) == pytest.approx((low, high), rel=1e-12, abs=1e-15)
        assert (d.better, d.compared) == (better, scored)
        assert scored == 28  # the documents with tokens
        assert (d.a, d.b, d.difference) == (total_a[m], total_b[m], total_b[m] - total_a[m])
        assert d.share_better == better / 28
    assert comparison.tokens is tokens
    assert (comparison.note is None) is tokens
    if not tokens:
        assert "token perplexity not compared" in comparison.note


def test_two_runs_with_equal_records_differ_by_exactly_zero():
    a, b = _report(_records(12, 4, empty=1)), _report(_records(12, 4, empty=1))
    comparison = a.compare(b, replicates=500, seed=1)
    for d in comparison.differences.values():
        assert (d.difference, d.low, d.high, d.better) == (0.0, 0.0, 0.0, 0)
    assert comparison.a == comparison.b


def test_the_bootstrap_is_deterministic_for_a_seed():
    report = _report(_records(20, 0))
    assert report.intervals(200, seed=3) == report.intervals(200, seed=3)
    assert report.intervals(200, seed=3) != report.intervals(200, seed=4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.intervals(0), "replicates"),
        (lambda r: r.intervals(-5), "replicates"),
        (lambda r: r.intervals(True), "replicates"),
        (lambda r: r.intervals(10, seed=-1), "seed"),
        (lambda r: _report(r.documents[:1]).intervals(10), "at least 2"),
        (lambda r: _report(_records(3, 0, empty=2)).intervals(10), "at least 2 with tokens, got 1"),
        (lambda r: r.compare(_report(r.documents[:-1])), "not the same documents"),
        (lambda r: r.compare(_report(r.documents[::-1])), "not the same document"),
        (lambda r: r.compare(_report(r.documents, vocab_size=101)), "vocabulary size (A: 100, B: 101"),
    ],
)
def test_bad_bootstrap_and_comparison_input_is_an_input_error_that_names_it(call, message):
    with pytest.raises(InputError, match=re.escape(message)):
        call(_report(_records(5, 0)))


def test_tokens_compare_only_under_one_tokenizer():
    assert tokens_compared({"tokenizer": "x", "vocab_size": 5}, {"tokenizer": "x", "vocab_size": 5})
    assert not tokens_compared({"tokenizer": "x", "vocab_size": 5}, {"tokenizer": "y", "vocab_size": 9})
    with pytest.raises(InputError, match="vocabulary size"):
        tokens_compared({"tokenizer": "x", "vocab_size": 5}, {"tokenizer": "x", "vocab_size": 9})


# --- sums that add up exactly --------------------------------------------------------------------------------


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_the_total_does_not_depend_on_the_order_of_the_documents(nlls, random):
    docs = [DocumentScore(str(i), sums={"tokens": i + 1, "nll_sum": x}) for i, x in enumerate(nlls)]
    shuffled = random.sample(docs, len(docs))
    total, again = _report(docs).total, _report(shuffled).total
    assert total.sums == again.sums
    assert total.nll == math.fsum(nlls)
    assert total.tokens == sum(range(1, len(nlls) + 1))


# --- the engine, with a character tokenizer and a score of each window alone ---------------------------------


def fake_encode(text):
    return [3 + ord(c) % 97 for c in text], [(i, i + 1) for i in range(len(text))]


def fake_score(windows):
    """A window's "negative log-likelihood": from its scored targets alone, so batches cannot change it."""
    return [float(sum(0.1 * (t % 11) + 0.05 for t in w.targets[w.targets != IGNORE])) for w in windows]


def fake_run(paths, batch_size=1, **kwargs):
    return run(
        paths,
        encode=fake_encode,
        score=fake_score,
        prefix=1,
        context=16,
        stride=kwargs.pop("stride", 16),
        batch_size=batch_size,
        settings=kwargs.pop("settings", SETTINGS),
        **kwargs,
    )


def write_jsonl(path, docs, field="text"):
    path.write_text("".join(json.dumps({"id": i, field: t}, ensure_ascii=False) + "\n" for i, t in docs), "utf-8")
    return path


DOCS = [(f"d{i}", generated_text(2 + i % 5, seed=i)) for i in range(9)]


@pytest.fixture
def shards(tmp_path):
    """The same nine documents as one JSONL file and as three."""
    whole = write_jsonl(tmp_path / "all.jsonl", DOCS)
    parts = [write_jsonl(tmp_path / f"part{k}.jsonl", DOCS[3 * k : 3 * k + 3]) for k in range(3)]
    return whole, parts


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_the_documents_and_intervals_do_not_depend_on_batches_or_files(shards, batch_size):
    whole, parts = shards
    reference = fake_run(whole)
    report = fake_run(parts, batch_size=batch_size)
    assert [(d.name, d.sums) for d in report.documents] == [(d.name, d.sums) for d in reference.documents]
    assert [d.file for d in report.documents] == [str(p) for p in parts for _ in range(3)]
    assert report.total.sums == reference.total.sums
    assert report.intervals(300, seed=2) == reference.intervals(300, seed=2)


def test_several_files_are_scored_in_order_each_text_file_one_document(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(generated_text(6, seed=1), "utf-8")
    jsonl = write_jsonl(tmp_path / "d.jsonl", DOCS[:2])
    report = fake_run([jsonl, text, jsonl])
    expected = [("d0", 1), ("d1", 2), (str(text), None), ("d0", 1), ("d1", 2)]
    assert [(d.name, d.line) for d in report.documents] == expected
    alone = fake_run(text)
    assert report.documents[2].sums == alone.documents[0].sums
    assert report.files == [str(jsonl), str(text)]


def test_merged_records_give_exactly_the_numbers_of_one_run(shards, tmp_path):
    _, parts = shards
    one_run = fake_run(parts)
    files = []
    for k, group in enumerate([parts[:2], parts[2:]]):
        files.append(tmp_path / f"records{k}.jsonl")
        files[-1].write_text("".join(json.dumps(r) + "\n" for r in fake_run(group).records()), "utf-8")
    (merged,) = read_records(files)
    assert merged.as_dict() == one_run.as_dict()
    assert merged.settings == one_run.settings
    assert merged.intervals(250, seed=8) == one_run.intervals(250, seed=8)


def test_the_command_line_merges_records_without_torch(shards, tmp_path, cli):
    _, parts = shards
    one_run = fake_run(parts)
    files = []
    for k, group in enumerate([parts[:1], parts[1:]]):
        files.append(str(tmp_path / f"r{k}.jsonl"))
        with open(files[-1], "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in fake_run(group).records())
    out = tmp_path / "merged.jsonl"
    result = cli("perplexity", "--merge", *files, "--bootstrap", "200", "--seed", "4", "--format", "json",
                 "--documents", str(out))  # fmt: skip
    assert result.code == 0, result.err
    expected = jsonable({**one_run.as_dict(), "ci": one_run.intervals(200, seed=4).as_dict()})
    assert json.loads(result.out) == expected
    assert [json.loads(line) for line in out.read_text("utf-8").splitlines()] == list(one_run.records())
    table = cli("perplexity", "--merge", *files, "--bootstrap", "200")
    assert table.code == 0
    assert "95% low" in table.out
    assert "200 bootstrap replicates" in table.out


def test_records_hold_what_the_issue_names_and_round_trip_an_infinite_sum(tmp_path):
    docs = _records(3, 0)
    docs[1].sums["nll_sum"] = math.inf
    records = list(_report(docs).records())
    for name in ("id", "tokens", "bytes", "words", "nll_sum", *HEADLINE, "file", "line", "model", "context"):
        assert name in records[0]
    assert records[1]["nll_sum"] == "inf"
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    (back,) = read_records([path])
    assert [d.sums for d in back.documents] == [d.sums for d in docs]
    assert back.documents[1].nll == math.inf


def test_empty_documents_are_counted_and_listed_not_nan(tmp_path):
    jsonl = write_jsonl(tmp_path / "d.jsonl", [("a", "some text here"), ("blank", ""), ("b", "more text")])
    empty_text = tmp_path / "empty.txt"
    empty_text.write_text("")
    report = fake_run([jsonl, empty_text])
    assert [d.name for d in report.empty] == ["blank", str(empty_text)]
    out = report.as_dict()
    assert out["empty_documents"] == ["blank", str(empty_text)]
    blank = out["documents"][1]
    assert (blank["tokens"], blank["bytes"], blank["words"]) == (0, 0, 1)
    assert all(blank[m] is None for m in HEADLINE)
    assert not any(isinstance(v, float) and math.isnan(v) for v in out.values())
    assert report.intervals(50).documents == 4  # empty documents are resampled too: they hold words (W)


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ({"e.jsonl": '{"text": ""}\n'}, "nothing to score: the one document of"),
        ({"e.jsonl": '{"text": ""}\n{"text": ""}\n'}, "nothing to score: all 2 documents are empty"),
        ({"e.txt": ""}, "e.txt is empty"),
        ({"e.jsonl": "\n\n"}, "no document in this JSONL file"),
        ({"e.jsonl": '{"body": "x"}\n'}, "line 1: expected an object with a string field 'text'"),
        ({}, "no text to score"),
    ],
)
def test_nothing_to_score_is_an_input_error(tmp_path, contents, message):
    paths = []
    for name, text in contents.items():
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    with pytest.raises(InputError, match=message):
        fake_run(paths)


# --- reading records back --------------------------------------------------------------------------------


def _good_record(**changes):
    record = next(_report(_records(1, 0)).records())
    record.update(changes)
    return {k: v for k, v in record.items() if v != "<drop>"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "not a JSON record"),
        (json.dumps(_good_record(extra=1)), "unknown field 'extra'"),
        (json.dumps(_good_record(nll_sum="<drop>")), "no field 'nll_sum'"),
        (json.dumps(_good_record(tokens=-1)), "'tokens' must be a count"),
        (json.dumps(_good_record(tokens=True)), "'tokens' must be a count"),
        (json.dumps(_good_record(tokens=2.5)), "'tokens' must be a count"),
        (json.dumps(_good_record(nll_sum="abc")), "'nll_sum' must be a number"),
        (json.dumps(_good_record(nll_sum=float("nan"))), "'nll_sum' must be a number"),
        (json.dumps(_good_record(line="3")), "'line' must be an integer"),
        (json.dumps(_good_record(context="16")), "'context' must be an integer"),
        (json.dumps(_good_record(id=7)), "'id' must be a string"),
    ],
)
def test_a_bad_record_is_an_input_error_that_says_where(tmp_path, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_good_record(id="first")) + "\n\n" + line + "\n")
    with pytest.raises(InputError, match=f"r.jsonl, line 3: .*{message}"):
        read_records([path])


def test_merge_refuses_records_that_do_not_make_one_run(tmp_path):
    def write(name, *records):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    a = write("a.jsonl", _good_record(id="x"))
    with pytest.raises(InputError, match=r"b.jsonl, line 1: context is 32, but .*a.jsonl, line 1 has 16"):
        read_records([a, write("b.jsonl", _good_record(id="y", context=32))])
    with pytest.raises(InputError, match=r"a.jsonl, line 1: document 'x' .* is also at .*a.jsonl, line 1"):
        read_records([a, a])
    three = [write(f"{m}.jsonl", _good_record(model=m)) for m in "pqr"]
    with pytest.raises(InputError, match="records of 3 models"):
        read_records(three)
    with pytest.raises(InputError, match="no record"):
        read_records([write("empty.jsonl")])
    with pytest.raises(InputError, match="cannot read"):
        read_records([tmp_path / "missing.jsonl"])
    two = read_records([write("p.jsonl", _good_record(model="p")), write("q.jsonl", _good_record(model="q"))])
    assert [r.settings["model"] for r in two] == ["p", "q"]


# --- a statistic added to the record: nothing else changes ---------------------------------------------------


def test_a_sum_added_to_the_record_flows_through_totals_merge_and_bootstrap(monkeypatch, tmp_path):
    """What item 6 of issue 30 will add (per-bin counts, entropy sums), declared here: no other code changes."""
    bins = Sum("right_per_bin", integer=True, size=3)  # tokens right, per confidence bin
    entropy = Sum("entropy_sum")  # summed entropy of the predicted distribution, nats

    def mean_entropy(s):
        return s["entropy_sum"] / s["tokens"]

    def top_bin_share(s):
        return s["right_per_bin"][..., 2] / s["tokens"]

    monkeypatch.setattr(RECORD, "sums", (*RECORD.sums, bins, entropy))
    monkeypatch.setattr(
        RECORD,
        "measures",
        (
            *RECORD.measures,
            Measure("mean_entropy", "mean entropy (nats)", mean_entropy, per_token=True, headline=True),
            Measure("top_bin_share", "share right in the top bin", top_bin_share, per_token=True, headline=True),
        ),
    )
    rng = np.random.default_rng(0)
    docs = _records(10, 3)
    for d in docs:
        d.add({"right_per_bin": tuple(int(k) for k in rng.integers(0, 5, 3)), "entropy_sum": float(rng.random())})
    report = _report(docs)
    total = report.total
    assert total.sums["right_per_bin"] == tuple(sum(d.sums["right_per_bin"][k] for d in docs) for k in range(3))
    assert total.sums["entropy_sum"] == math.fsum(d.sums["entropy_sum"] for d in docs)
    assert total.metrics()["mean_entropy"] == total.sums["entropy_sum"] / total.tokens
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in report.records()))
    (merged,) = read_records([path])
    assert merged.as_dict() == report.as_dict()
    ci = merged.intervals(200, seed=1)
    rng = np.random.default_rng(1)
    shares = []
    for _ in range(200):
        i = rng.integers(0, len(docs), size=len(docs))
        shares.append(sum(docs[j].sums["right_per_bin"][2] for j in i) / sum(docs[j].tokens for j in i))
    assert ci.bounds["top_bin_share"] == pytest.approx(tuple(np.percentile(shares, [2.5, 97.5])), rel=1e-12)
    assert set(report.compare(merged, replicates=50).differences) == {*HEADLINE, "mean_entropy", "top_bin_share"}


# --- the command line, with tiny models built here ----------------------------------------------------------

transformers = optional("transformers")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Model directories: a and b (one tokenizer), big (its vocabulary 64 larger), other (another tokenizer)."""
    byte_level = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(), bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    metaspace = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_metaspace_bpe(), bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    root = tmp_path_factory.mktemp("models")
    dirs = {}
    for name, tokenizer, seed, extra in [
        ("a", byte_level, 0, 0),
        ("b", byte_level, 1, 0),
        ("big", byte_level, 0, 64),
        ("other", metaspace, 2, 0),
    ]:
        dirs[name] = root / name
        _llama(len(tokenizer) + extra, hidden=32, layers=1, seed=seed).save_pretrained(dirs[name])
        tokenizer.save_pretrained(dirs[name])
    return {k: str(v) for k, v in dirs.items()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three JSONL files of documents (one of them empty) and a text file."""
    root = tmp_path_factory.mktemp("corpus")
    docs = [(f"doc{i}", generated_text(2 + i % 4, seed=20 + i)) for i in range(11)] + [("blank", "")]
    files = [write_jsonl(root / f"part{k}.jsonl", docs[4 * k : 4 * k + 4]) for k in range(3)]
    text = root / "notes.txt"
    text.write_text(generated_text(5, seed=99), "utf-8")
    return [str(f) for f in files], str(text)


def _json(result):
    assert result.code == 0, result.err
    return json.loads(result.out)


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_cli_intervals_equal_a_direct_bootstrap_on_the_documents_file(models, corpus, tmp_path, cli):
    files, text = corpus
    out = tmp_path / "docs.jsonl"
    args = [models["a"], *files, text, "--context", "32", "--bootstrap", "300", "--seed", "5"]
    result = _json(cli("perplexity", *args, "--documents", str(out), "--format", "json"))
    records = _read(out)
    assert [r["id"] for r in records] == [f"doc{i}" for i in range(11)] + ["blank", text]
    assert [r["line"] for r in records[:5]] == [1, 2, 3, 4, 1]
    assert result["empty_documents"] == ["blank"]
    assert result["nll_sum"] == math.fsum(r["nll_sum"] for r in records)
    assert result["tokens"] == sum(r["tokens"] for r in records)
    for r in records[:-2]:
        assert r["token_perplexity"] == pytest.approx(math.exp(r["nll_sum"] / r["tokens"]), rel=1e-15)
    expected = direct_bootstrap(records, 300, 5)
    assert result["ci"]["documents"] == len(records)
    for m in HEADLINE:
        assert (result["ci"][m]["low"], result["ci"][m]["high"]) == pytest.approx(expected[m], rel=1e-12)
        assert result["ci"][m]["low"] < result[m] < result["ci"][m]["high"]


def test_cli_comparison_equals_a_direct_paired_bootstrap(models, corpus, tmp_path, cli):
    files, _ = corpus
    out = tmp_path / "both.jsonl"
    args = [models["a"], *files, "--compare", models["b"], "--context", "32", "--bootstrap", "400", "--seed", "2"]
    result = _json(cli("perplexity", *args, "--documents", str(out), "--format", "json"))
    records = _read(out)
    a = [r for r in records if r["model"] == models["a"]]
    b = [r for r in records if r["model"] == models["b"]]
    assert len(a) == len(b) == 12
    expected = direct_paired(a, b, 400, 2)
    comparison = result["comparison"]
    assert comparison["same_tokenizer"] is True
    assert comparison["note"] is None
    for m in HEADLINE:
        low, high, better, scored = expected[m]
        got = comparison[m]
        assert (got["low"], got["high"]) == pytest.approx((low, high), rel=1e-12, abs=1e-15)
        assert (got["b_better"], got["compared"]) == (better, scored)
        assert got["difference"] == result["b"][m] - result["a"][m]
    table = cli("perplexity", *args, "--format", "csv")
    assert table.code == 0
    row = next(line for line in table.out.splitlines() if ",bits per byte," in line)
    assert row.endswith(
        f",{comparison['bits_per_byte']['b_better']}/11 ({100 * comparison['bits_per_byte']['share_b_better']:.3g}%)"
    )


def test_cli_the_same_model_twice_differs_by_exactly_zero(models, corpus, tmp_path, cli):
    files, _ = corpus
    copy = tmp_path / "copy-of-a"
    shutil.copytree(models["a"], copy)
    for twin in (models["a"], str(copy)):  # the same directory, and a copy loaded on its own
        args = [models["a"], files[0], "--compare", twin, "--context", "32", "--format", "json"]
        result = _json(cli("perplexity", *args))
        for m in HEADLINE:
            got = result["comparison"][m]
            assert (got["difference"], got["low"], got["high"], got["b_better"]) == (0.0, 0.0, 0.0, 0)


def test_cli_comparison_across_tokenizers_compares_bytes_and_words_only(models, corpus, cli):
    files, _ = corpus
    args = [models["a"], files[0], "--compare", models["other"], "--context", "32"]
    result = _json(cli("perplexity", *args, "--format", "json"))
    comparison = result["comparison"]
    assert comparison["same_tokenizer"] is False
    assert {"bits_per_byte", "word_perplexity"} <= comparison.keys()
    assert "token_perplexity" not in comparison
    assert "token perplexity not compared" in comparison["note"]
    assert result["a"]["tokens"] != result["b"]["tokens"]
    table = cli("perplexity", *args)
    assert "token perplexity not compared" in table.out


def test_cli_refuses_another_vocabulary_under_one_tokenizer_before_scoring(models, corpus, cli, monkeypatch):
    from crossentropy._perplexity import model

    def never(*args, **kwargs):
        raise AssertionError("scored although the comparison is refused")

    monkeypatch.setattr(model, "perplexity", never)
    result = cli("perplexity", models["a"], corpus[0][0], "--compare", models["big"])
    assert result.code == 2
    assert "share a tokenizer but not a vocabulary size" in result.error_line


def test_cli_merged_shards_give_exactly_one_run(models, corpus, tmp_path, cli):
    files, text = corpus
    common = ["--context", "32", "--format", "json"]
    whole = _json(cli("perplexity", models["a"], *files, text, *common, "--bootstrap", "200", "--seed", "1"))
    shard1, shard2 = tmp_path / "s1.jsonl", tmp_path / "s2.jsonl"
    _json(cli("perplexity", models["a"], *files[:2], *common, "--documents", str(shard1)))
    _json(cli("perplexity", models["a"], files[2], text, *common, "--documents", str(shard2)))
    merged = _json(cli("perplexity", "--merge", str(shard1), str(shard2), "--bootstrap", "200", "--seed", "1",
                       "--format", "json"))  # fmt: skip
    assert merged == whole
    compare = ["--compare", models["b"], "--seed", "3"]
    whole = _json(cli("perplexity", models["a"], *files, *common, *compare))
    _json(cli("perplexity", models["a"], *files[:1], *common, *compare, "--documents", str(shard1)))
    _json(cli("perplexity", models["a"], *files[1:], *common, *compare, "--documents", str(shard2)))
    merged = _json(cli("perplexity", "--merge", str(shard1), str(shard2), "--seed", "3", "--format", "json"))
    assert merged == whole


def test_cli_text_field(models, tmp_path, cli):
    path = write_jsonl(tmp_path / "d.jsonl", DOCS[:3], field="body")
    for option in ("--text-field", "--field"):
        result = _json(cli("perplexity", models["a"], str(path), option, "body", "--context", "32", "--format", "json"))
        assert [d["id"] for d in result["documents"]] == ["d0", "d1", "d2"]
    missing = cli("perplexity", models["a"], str(path), "--context", "32")
    assert missing.code == 2
    assert "line 1: expected an object with a string field 'text'" in missing.error_line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{a}", "{jsonl}", "--bootstrap", "0"], "--bootstrap: '0' must be >= 1"),
        (["{a}", "{jsonl}", "--bootstrap", "-4"], "--bootstrap: '-4' must be >= 1"),
        (["{a}", "{text}", "--bootstrap", "100"], "needs at least 2 with tokens, got 1"),
        (["{a}", "{text}", "--compare", "{b}"], "needs at least 2 with tokens, got 1"),
        (["{a}", "--merge", "{jsonl}"], "give no MODEL_DIR or TEXT"),
        (["--merge", "{jsonl}", "--context", "8"], "--context does not apply"),
        (["--merge", "{jsonl}", "--compare", "{b}"], "--compare does not apply"),
        (["--merge", "{jsonl}"], "unknown field 'text'"),
        (["{a}", "--context", "32"], "give MODEL_DIR and at least one TEXT"),
        ([], "give MODEL_DIR and at least one TEXT"),
        (["{a}", "{jsonl}", "--documents", "{nodir}/out.jsonl"], "cannot write the documents file"),
    ],
)
def test_cli_bad_input_is_one_line_and_status_2(models, tmp_path, cli, args, message):
    jsonl = write_jsonl(tmp_path / "d.jsonl", DOCS[:3])
    text = tmp_path / "t.txt"
    text.write_text("hello world\n")
    names = {**models, "jsonl": str(jsonl), "text": str(text), "nodir": str(tmp_path / "missing")}
    result = cli("perplexity", *(a.format(**names) for a in args))
    assert result.code == 2
    assert message in result.error_line


def test_batches_of_windows_change_the_intervals_only_by_float32_rounding(models, corpus):
    from crossentropy.transformers import perplexity

    files, text = corpus
    one = perplexity(models["a"], [*files, text], context=32, stride=16, batch_size=1)
    many = perplexity(models["a"], [*files, text], context=32, stride=16, batch_size=5)
    assert [(d.name, d.tokens, d.bytes, d.words) for d in many.documents] == [
        (d.name, d.tokens, d.bytes, d.words) for d in one.documents
    ]
    assert [d.nll for d in many.documents] == pytest.approx([d.nll for d in one.documents], rel=1e-6)
    a, b = one.intervals(300, seed=0), many.intervals(300, seed=0)
    for m in HEADLINE:
        assert b.bounds[m] == pytest.approx(a.bounds[m], rel=1e-6)
