"""Hostile input to the application side (issue 27, items 5-14): each reproducer, on every path it applies to.

A wrong number, an unbounded read, a traceback where one line and exit 2
belong, or output that lies or leaks: each case of the issue is run through
the command line (in-process, or as a shell runs it where a closed stream or
a worker process matters), and through each engine, reader and output format
it concerns. The explorer's slow drip (27.15) is in ``test_explore.py``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from crossentropy._validation import InputError
from crossentropy.cli import main

from test_adversarial_files import _peak_rss_mb  # isort: skip

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

CLI = [sys.executable, "-m", "crossentropy"]


def _run(argv, capsys, *, strict_warnings=True):
    """``main(argv)`` with every warning an error (a RuntimeWarning on stderr is a leak): code, out, err."""
    with warnings.catch_warnings():
        if strict_warnings:
            warnings.simplefilter("error")
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _cells(out: str) -> str:
    """A table's text without its borders and blanks (a long cell folds over several lines)."""
    return re.sub(r"[\s│┃]", "", out)


def _shell(command: str, cwd, timeout: int = 300) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, timeout=timeout, check=False)


def _write(frame: pd.DataFrame, directory, name: str, fmt: str) -> str:
    """``frame`` as a CSV, Parquet or NPY file (NPY columns by position: the label first)."""
    path = directory / f"{name}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        np.save(path, frame.to_numpy(dtype=float))
    return str(path)


FORMATS = ("csv", "parquet", "npy")


def _columns(fmt: str, width: int) -> list[str]:
    if fmt == "npy":
        return ["--labels", "0", "--probs", ",".join(str(j) for j in range(1, width + 1))]
    return ["--labels", "label", "--probs", "p*"]


def _engines(path: str, options: list[str], capsys) -> dict[str, dict]:
    """The JSON result of the local engine and of the Dask engine's library (synchronous scheduler)."""
    code, out, err = _run(["score", path, *options, "--per-class", "--calibration", "--format", "json"], capsys)
    assert code == 0, err
    results = {"local": json.loads(out)}
    dask = pytest.importorskip("crossentropy.dask")
    from crossentropy.cli.score import options as score_options

    args = _parse(["score", path, *options])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results["dask"] = dask.score(path, score_options(args), scheduler="synchronous")
    return results


def _parse(argv):
    from crossentropy.cli import build_parser

    return build_parser().parse_args(argv)


# --- 27.5: renormalising without overflow ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_renormalising_rows_whose_sum_overflows(tmp_path, capsys, fmt):
    frame = pd.DataFrame({"label": [0, 1], "p0": [1e308, 1.5e308], "p1": [1e308, 0.5e308]})
    path = _write(frame, tmp_path, "huge", fmt)
    for engine, result in _engines(path, [*_columns(fmt, 2), "--renormalize"], capsys).items():
        assert result["rows_scored"] == 2, engine
        assert result["mean_loss"] == pytest.approx(1.5 * math.log(2), rel=1e-15), engine  # (ln 2 + ln 4) / 2
        assert result["per_class"][0]["mean_loss"] == math.log(2), engine


def test_the_row_1e308_1e308_has_mean_loss_ln_2(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("label,p0,p1\n0,1e308,1e308\n")
    code, out, err = _run(["score", tmp_path / "r.csv", "--renormalize", "--format", "json"], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out)["mean_loss"] == math.log(2)


# --- 27.6: every read bounded by the bytes read ----------------------------------------------------------


def test_a_device_that_claims_size_0_is_read_up_to_the_bound_only(tmp_path, capsys, monkeypatch):
    from crossentropy.cli import compare
    from crossentropy.io import read_bounded

    with pytest.raises(InputError, match=r"P: /dev/zero holds more than 1,048,576 bytes"):
        read_bounded("/dev/zero", 1 << 20, name="P")
    monkeypatch.setattr(compare, "MAX_DISTRIBUTION_EVENTS", 1 << 16)
    code, _, err = _run(["compare", "/dev/zero", "0.5,0.5"], capsys)
    assert code == 2
    assert "P: /dev/zero holds more than 2,097,152 bytes; at most 2,097,152 are read" in _one_line(err)
    (tmp_path / "p.txt").write_text("0.25 0.75\n")
    assert read_bounded(str(tmp_path / "p.txt"), 10, name="P") == b"0.25 0.75\n"
    with pytest.raises(InputError, match="holds more than 9 bytes"):
        read_bounded(str(tmp_path / "p.txt"), 9, name="P")


@pytest.mark.slow
@pytest.mark.parametrize("command", [["compare", "/dev/zero", "0.5,0.5"], ["score", "/dev/zero"]])
def test_dev_zero_is_an_error_in_bounded_memory(tmp_path, command):
    # issue 27.6: compare grew to 23 GB until the OOM killer ended it
    code, rss, message = _peak_rss_mb(command, tmp_path)
    assert code == 2
    assert "/dev/zero" in _one_line(message)
    assert rss < 1200, rss


# --- 27.7: per-class tables and figures of bounded size ------------------------------------------------


def _many_classes(directory, classes: int, rows: int, seed: int = 0) -> str:
    """An NPY file: the label in column 0, then ``classes`` probabilities."""
    rng = np.random.default_rng(seed)
    probs = rng.random((rows, classes))
    probs /= probs.sum(axis=1, keepdims=True)
    path = directory / f"wide-{classes}.npy"
    np.save(path, np.column_stack([rng.integers(0, classes, rows), probs]))
    return str(path)


def test_the_per_class_table_shows_the_top_classes_and_sums_the_rest(tmp_path, capsys):
    path = _many_classes(tmp_path, 300, 40)
    code, out, _ = _run(["score", path, "--labels", "0", "--per-class", "--format", "json"], capsys)
    assert code == 0
    every = json.loads(out)["per_class"]
    assert len(every) == 300  # JSON lists every class
    argv = ["score", path, "--labels", "0", "--per-class", "--format", "csv", "--top-classes", "5"]
    code, out, _ = _run(argv, capsys)
    rows = [row for row in csv.reader(io.StringIO(out)) if row[0].startswith("per class")]
    assert len(rows) == 6
    assert rows[0][0] == (
        "per class: the 5 of 300 classes with the largest share of the total loss; the other 295 summed in one row "
        "(see --top-classes)"
    )
    ranked = sorted(every, key=lambda c: (-abs(c["loss_sum"]), -c["count"], c["class"]))
    assert [int(r[1]) for r in rows[:5]] == [c["class"] for c in ranked[:5]]
    rest = ranked[5:]
    assert rows[-1][1:3] == ["295 other classes", str(sum(c["count"] for c in rest))]
    expected = sum(c["loss_sum"] for c in rest) / sum(c["weight"] for c in rest)
    assert float(rows[-1][3]) == pytest.approx(expected, rel=1e-5)  # the table's 6 significant digits
    code, out, _ = _run(["score", path, "--labels", "0", "--per-class", "--top-classes", "0"], capsys)
    assert code == 0
    assert "other classes" not in out
    code, out, _ = _run(["score", path, "--labels", "0", "--per-class"], capsys)
    assert "(see--top-classes)" in _cells(out)


def test_the_report_stays_the_same_size_for_20000_classes(tmp_path, capsys):
    # issue 27.7: a 200-row CSV of 20,000 classes took 101 s and 900 MB with --report (2 s without)
    sizes = {}
    for classes in (30, 20_000):
        path = _many_classes(tmp_path, classes, 200)
        report = tmp_path / f"r{classes}.html"
        code, _, err = _run(["score", path, "--labels", "0", "--report", report], capsys)
        assert code == 0, err
        page = report.read_text()
        sizes[classes] = len(page)
        assert page.count('<th scope="row">') <= 21 + 10 + 10  # 20 classes and the rest, 10 bins, 10 worst rows
        if classes > 20:
            assert f"the 20 of {classes:,} classes with the largest share of the total loss" in page
            assert f"{classes - 20:,} other classes" in page
    assert sizes[20_000] < 1.5 * sizes[30], sizes


# --- 27.8 and 27.12: the perplexity command --------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny model directories: a good one, a truncated one, bad configs, and one without tokenizer files."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_tokens([chr(c) for c in range(32, 127)] + ["\n"])
    backend.add_special_tokens(["<eos>"])
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")
    root = tmp_path_factory.mktemp("models")

    def llama(vocab: int):
        torch.manual_seed(0)
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=64,
        )  # fmt: skip
        return transformers.LlamaForCausalLM(config)

    def save(name, model, with_tokenizer=True):
        model.save_pretrained(root / name)
        if with_tokenizer:
            tokenizer.save_pretrained(root / name)
        return root / name

    good = save("good", llama(len(tokenizer)))
    save("small-vocabulary", llama(20))
    truncated = save("truncated", llama(len(tokenizer)))
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    gpt2 = transformers.GPT2Config(
        vocab_size=100, n_embd=16, n_layer=1, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=1
    )
    bad = save("bad-config", transformers.GPT2LMHeadModel(gpt2))
    config = json.loads((bad / "config.json").read_text())
    config["n_embd"] = "abc"
    (bad / "config.json").write_text(json.dumps(config))
    qwen = transformers.Qwen2Config(
        vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, bos_token_id=0, eos_token_id=1,
    )  # fmt: skip
    save("no-tokenizer", transformers.Qwen2ForCausalLM(qwen), with_tokenizer=False)
    (root / "t.txt").write_text("the cat sat on the mat\n")
    (root / "empty.txt").write_text("")
    (root / "empty.jsonl").write_text('{"text": ""}\n{"text": ""}\n')
    (root / "blank.jsonl").write_text("\n\n")
    assert good.is_dir()
    return root


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["good", "t.txt", "--prefix-token", "999999"],
            "prefix_token 999999 is outside the model's vocabulary [0, 97)",
        ),
        (["small-vocabulary", "t.txt", "--prefix-token", "3"], "is outside the model's vocabulary [0, 20)"),
        (["good", "t.txt", "--device", "junk"], "device 'junk' is not a torch device"),
        (["good", "t.txt", "--device", "meta"], "device 'meta' holds no data"),
        (["truncated", "t.txt"], "cannot load a causal language model from"),
        (["bad-config", "t.txt"], "n_embd"),
        (["good", "empty.txt"], "nothing to score: {root}/empty.txt is empty"),
        (["good", "empty.jsonl"], "nothing to score: all 2 documents are empty"),
        (["good", "blank.jsonl"], "{root}/blank.jsonl: no document in this JSONL file (every line is blank)"),
        (["no-tokenizer", "t.txt"], "the tokenizer loaded has 1 token: the directory holds no tokenizer files"),
    ],
)
def test_perplexity_refuses_with_one_line(models, capsys, argv, message):
    code, _, err = _run(["perplexity", *(models / a if i < 2 else a for i, a in enumerate(argv))], capsys,
                        strict_warnings=False)  # fmt: skip
    assert code == 2, err
    assert message.format(root=models) in _one_line(err)


def test_perplexity_on_a_device_this_machine_lacks(models, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is a device it has")
    code, _, err = _run(["perplexity", models / "good", models / "t.txt", "--device", "cuda"], capsys)
    assert code == 2
    assert "device 'cuda' cannot be used on this machine" in _one_line(err)


def test_token_ids_beyond_the_models_vocabulary_are_an_input_error(models):
    pytest.importorskip("transformers")
    from crossentropy._perplexity.model import load_model
    from crossentropy.transformers import perplexity

    small, tokenizer = load_model(models / "small-vocabulary", "auto", None)
    with pytest.raises(InputError, match=r"token id \d+ is outside the model's vocabulary \[0, 20\)"):
        perplexity(small, models / "t.txt", tokenizer=tokenizer, prefix_token=3)


# --- 27.9 and 27.13: markup and terminal escapes ------------------------------------------------------------


HOSTILE = ["[/bold]", "\x1b]0;PWN\x07", "[bold red]x", "a\rb", "\u202eevil"]


def _no_control(text: str) -> None:
    for char in ("\x1b", "\x07", "\r", "\u202e"):
        assert char not in text, repr(text)


def test_jsonl_ids_reach_the_table_as_written(models, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # no cell folded over two lines
    path = models / "ids.jsonl"
    path.write_text("".join(json.dumps({"id": name, "text": "the cat"}) + "\n" for name in HOSTILE))
    code, out, err = _run(["perplexity", models / "good", path], capsys, strict_warnings=False)
    assert code == 0, err
    _no_control(out)
    for shown in ("[/bold]", "\\x1b]0;PWN\\x07", "[bold red]x", "a\\rb", "\\u202eevil"):
        assert shown.replace(" ", "") in _cells(out), shown
    code, out, _ = _run(["perplexity", models / "good", path, "--format", "csv"], capsys, strict_warnings=False)
    _no_control(out)
    code, out, _ = _run(["perplexity", models / "good", path, "--format", "json"], capsys, strict_warnings=False)
    _no_control(out)
    assert [d["id"] for d in json.loads(out)["documents"]] == HOSTILE  # JSON keeps the data, escaped


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_file_and_column_names_are_shown_as_written(tmp_path, capsys, monkeypatch, fmt):
    monkeypatch.setenv("COLUMNS", "300")  # no cell folded over two lines
    names = ["[red]x.csv", "\x1b]0;PWN\x07.csv"]
    for name in names:
        (tmp_path / name).write_text("label,p0,p1\n0,0.3,0.7\n1,0.2,0.8\n")
        code, out, err = _run(["score", tmp_path / name, "--format", fmt, "--per-class"], capsys)
        assert code == 0, err
        _no_control(out)
        if fmt == "json":
            assert json.loads(out)["file"] == str(tmp_path / name)
        else:
            assert name.replace("\x1b", "\\x1b").replace("\x07", "\\x07") in _cells(out)
    column = "\x1b]0;PWN\x07"
    (tmp_path / "c.csv").write_text(f"label,p0,{column}\n0,0.3,x\n")
    code, _, err = _run(["score", tmp_path / "c.csv"], capsys)
    assert code == 2
    line = _one_line(err)
    _no_control(line)
    assert "\\x1b]0;PWN\\x07" in line


def test_usage_errors_show_arguments_as_written(capsys):
    for argv in (["score", "a.csv", "\x1b]0;PWN\x07"], ["\x1b[2J"], ["score", "a.csv", "--bins", "\x1b[2J"]):
        code, _, err = _run(argv, capsys)
        assert code == 2
        line = _one_line(err)
        _no_control(line)
        assert "\\x1b" in line, line


def test_a_csv_field_beyond_the_csv_modules_limit(tmp_path, capsys):
    (tmp_path / "header.csv").write_text("label," + "p" * 140_000 + ",q\n0,0.5,0.5\n")
    code, _, err = _run(["score", tmp_path / "header.csv"], capsys)
    assert code == 2
    assert "header.csv: line 1: cannot read the header: a field is longer than 131,072 characters" in _one_line(err)
    wide = ",".join(f"p{j}" for j in range(1200))  # more than 1000 columns: parsed line by line
    cells = ",".join(["0"] * 1199)
    (tmp_path / "cell.csv").write_text(f"label,{wide}\n0,{'1' * 140_000},{cells}\n1,1,{cells}\n")
    code, _, err = _run(["score", tmp_path / "cell.csv"], capsys)
    assert code == 2
    assert "cell.csv: line 2: wrong number of fields (a field is longer than 131,072 characters)" in _one_line(err)
    code, out, err = _run(["score", tmp_path / "cell.csv", "--on-bad-row", "skip", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["rows_scored"] == 1


@pytest.mark.slow
def test_a_50_mb_file_with_no_line_end(tmp_path):
    (tmp_path / "flat.csv").write_bytes(b"label," + b"x" * (50 << 20))
    run = f"{sys.executable} -m crossentropy score"
    for command in (f"{run} flat.csv", f"{run} - < flat.csv"):
        proc = _shell(command, tmp_path)
        assert proc.returncode == 2
        assert "line 1: cannot read the header: a field is longer than 131,072 characters" in _one_line(
            proc.stderr.decode()
        )


# --- 27.10: arguments outside their range -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explore", "--port", "70000"], "argument --port: '70000' must be in [0, 65535]"),
        (["explore", "--port", "-1"], "argument --port: '-1' must be in [0, 65535]"),
        (["train", "--model", "mlp", "--hidden", "0"], "argument --hidden: '0' must be >= 1"),
        (["train", "--model", "mlp", "--hidden", "-1"], "argument --hidden: '-1' must be >= 1"),
        (["train", "--seed", "-1"], "argument --seed: '-1' must be in [0, 4294967295]"),
        (["train", "--seed", str(2**32)], "argument --seed: '4294967296' must be in [0, 4294967295]"),
        (["train", "--batch-size", "0"], "argument --batch-size: '0' must be >= 1"),
        (["train", "--every", "0"], "argument --every: '0' must be >= 1"),
        (["train", "--lr", "nan"], "argument --lr: 'nan' is not a number"),
        (["train", "--lr", "inf", "--epochs", "1"], "lr a finite number > 0"),
        (["train", "--target", "2", "--epochs", "1"], "--target is a test accuracy in [0, 1]"),
        (["score", "x.csv", "--fail-above", "nan"], "argument --fail-above: 'nan' is not a number"),
    ],
)
def test_arguments_out_of_range_are_one_line(capsys, argv, message):
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert message in _one_line(err)


def test_a_number_of_bins_that_would_exhaust_memory_is_refused(tmp_path, capsys):
    (tmp_path / "good.csv").write_text("label,p0,p1\n0,0.3,0.7\n")
    code, _, err = _run(["score", tmp_path / "good.csv", "--bins", str(10**9)], capsys)
    assert code == 2
    assert "bins must be in [1, 10000], got 1000000000" in _one_line(err)


def test_the_training_library_refuses_what_the_command_refuses():
    from crossentropy.learn import load_dataset, train

    x, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    for kwargs, name in (({"model": "mlp", "hidden": 0}, "hidden"), ({"batch_size": -1}, "batch_size"),
                         ({"seed": -1}, "seed"), ({"lr": math.nan}, "lr")):  # fmt: skip
        with pytest.raises(InputError, match=name):
            train(x, y, x, y, **kwargs)
    with pytest.raises(InputError, match="seed"):
        load_dataset("iris", seed=2**32)


# --- 27.11: a closed standard error -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_closed_stderr_changes_nothing_but_losing_the_diagnostics(tmp_path):
    (tmp_path / "good.csv").write_text("label,p0,p1\n0,0.3,0.7\n1,0.2,0.8\n")
    run = f"{sys.executable} -m crossentropy"
    for args in ("score good.csv", "score good.csv --progress --report r.html", "compare 0.5,0.5 0.25,0.75"):
        open_ = _shell(f"{run} {args}", tmp_path)
        closed = _shell(f"{run} {args} 2>&-", tmp_path)
        assert open_.returncode == closed.returncode == 0, (args, closed.stdout)
        assert closed.stdout == open_.stdout
    assert (tmp_path / "r.html").stat().st_size > 0
    for args, code in (("score missing.csv", 2), ("score good.csv --fail-above 0.1", 1)):
        closed = _shell(f"{run} {args} 2>&-", tmp_path)
        assert (closed.returncode, closed.stderr) == (code, b""), args


# --- 27.14: warnings, worker logs, NaN thresholds and one summation order ----------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_infinite_cells_and_losses_leak_no_warning(tmp_path, capsys, fmt):
    probs = pd.DataFrame({"label": [0, 1, 1, 0, 1, 0], "p0": [np.inf, 0.2, 1.0, 0.5, 0.4, 0.9],
                          "p1": [0.7, 0.8, 0.0, 0.5, 0.6, 0.1]})  # fmt: skip
    path = _write(probs, tmp_path, "inf", fmt)
    common = [*_columns(fmt, 2), "--on-bad-row", "skip", "--bootstrap", "50", "--per-class", "--calibration"]
    for engine, result in _engines(path, common, capsys).items():
        assert result["rows_rejected"] == 1, engine
        assert result["mean_loss"] in (math.inf, "inf"), engine  # row 3: p = 0 for its label
        lo, hi = result["bootstrap"]["ci95"]
        assert not (isinstance(lo, float) and math.isnan(lo)), engine
        assert hi in (math.inf, "inf"), engine  # most replicates draw the row of infinite loss
    code, _, err = _run(["score", path, *common, "--report", tmp_path / "r.html"], capsys)
    assert code == 0
    assert "Warning" not in err
    logits = pd.DataFrame({"label": [0, 1, 0], "p0": [-np.inf, 0.2, 1e308], "p1": [0.7, np.inf, -1e308]})
    path = _write(logits, tmp_path, "logits", fmt)
    options = ["--labels", "label" if fmt != "npy" else "0", "--logits", "p*" if fmt != "npy" else "1,2"]
    options += ["--on-bad-row", "skip", "--bootstrap", "20"]
    for engine, result in _engines(path, options, capsys).items():
        assert result["rows_scored"] == 2, engine
        assert result["mean_loss"] in (math.inf, "inf"), engine


def test_the_bootstrap_of_an_infinite_loss():
    from crossentropy.scoring import Layout, ScoreOptions, Scorer

    scorer = Scorer(Layout(num_classes=2, binary=True), ScoreOptions(bootstrap=200, seed=3))
    p = np.full(40, 0.8)
    p[7] = 0.0  # label 1, probability 0: an infinite loss
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer.update(np.ones(40), p)
        result = scorer.result()["bootstrap"]
    from crossentropy.scoring import poisson_weights

    drawn = poisson_weights(3, 0, 40, 200)[7] > 0
    assert 0.025 < (~drawn).mean() < 0.975  # replicates without the row: finite means, the others infinite
    lo, hi = result["ci95"]
    assert lo == pytest.approx(-math.log(0.8), rel=1e-12)
    assert hi == math.inf
    assert result["std"] == math.inf


@pytest.mark.slow
def test_bad_input_on_dask_workers_is_one_line(tmp_path):
    pytest.importorskip("distributed")
    frame = pd.DataFrame({"label": [0, 1, 0], "p": pd.to_datetime(["2020-01-01"] * 3)})
    frame.to_parquet(tmp_path / "times.parquet")
    proc = _shell(f"{sys.executable} -m crossentropy score times.parquet --engine dask --workers 1", tmp_path)
    assert proc.returncode == 2
    line = _one_line(proc.stderr.decode())  # no "Compute Failed" log of the worker before it
    assert "times.parquet: column 'p' is not numeric (type timestamp[us])" in line


def test_bad_input_on_the_dask_library_is_the_input_error(tmp_path):
    dask = pytest.importorskip("crossentropy.dask")
    frame = pd.DataFrame({"label": [0, 1, 0], "p": pd.to_datetime(["2020-01-01"] * 3)})
    frame.to_parquet(tmp_path / "times.parquet")
    with pytest.raises(InputError, match="column 'p' is not numeric"):
        dask.score(str(tmp_path / "times.parquet"), scheduler="synchronous")


def test_a_stream_and_a_file_give_the_same_last_digits(tmp_path, capsys, monkeypatch):
    # issue 27.14: ECE 0.00297924268547391 from the file, ...38543 from standard input (the blocks differed)
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)
    with open(tmp_path / "b.csv", "w") as handle:
        handle.write("label,p\n")
        np.savetxt(handle, np.column_stack([y, p]), fmt=["%d", "%.17g"], delimiter=",")
    data = (tmp_path / "b.csv").read_bytes()
    assert len(data) > 4 << 20  # more than one block
    code, from_file, _ = _run(["score", tmp_path / "b.csv", "--format", "json", "--bootstrap", "20"], capsys)
    assert code == 0
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, from_stdin, _ = _run(["score", "-", "--format", "json", "--bootstrap", "20"], capsys)
    assert code == 0
    a, b = json.loads(from_file), json.loads(from_stdin)
    b["file"] = a["file"]
    assert a == b


def _hostile_rows(seed: int = 0, n: int = 300) -> list[tuple[str, ...]]:
    """Rows of labels, three predictions and a weight drawn from the values that break arithmetic."""
    rng = np.random.default_rng(seed)
    values = ["0", "1", "inf", "-inf", "nan", "1e308", "1e-320", "-0.0", "0.5", "-1", "1e-300", "2"]
    labels = ["0", "1", "2", "1.5", "-1", "nan", "3"]
    weights = ["1", "0", "2.5", "inf", "-1", "1e308", "nan"]
    return [
        (rng.choice(labels, p=[0.3, 0.3, 0.3, 0.025, 0.025, 0.025, 0.025]), *rng.choice(values, 3),
         rng.choice(weights, p=[0.6, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]))
        for _ in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("convention", ["exact", "torch", "keras", "sklearn", "optax", "tf-keras2"])
def test_hostile_values_give_a_number_or_one_line_and_never_a_warning(tmp_path, capsys, convention):
    rows = _hostile_rows()
    (tmp_path / "m.csv").write_text("label,p0,p1,p2,w\n" + "".join(",".join(r) + "\n" for r in rows))
    (tmp_path / "b.csv").write_text("label,p,w\n" + "".join(f"{r[0]},{r[1]},{r[4]}\n" for r in rows))
    outcomes = set()
    for name, columns in (("m.csv", "p0,p1,p2"), ("b.csv", "p")):
        for kind, base, extra in itertools.product(
            ("--probs", "--logits"), ([], ["--base", "0.5"]), ([], ["--renormalize"], ["--sample-weight", "w"])
        ):
            argv = ["score", tmp_path / name, kind, columns, "--convention", convention, "--on-bad-row", "skip"]
            argv += ["--bootstrap", "20", "--per-class", "--calibration", "--format", "json", *base, *extra]
            code, out, err = _run(argv, capsys)  # every warning is an error here
            outcomes.add(code)
            if code == 0:
                result = json.loads(out)
                assert result["rows_scored"] + result["rows_rejected"] == len(rows)
                if convention != "optax":  # optax's own 0 * log 0 is NaN, and the convention reproduces it
                    assert result["mean_loss"] is not None, argv  # NaN would be a silent failure
            else:
                assert code == 2, (argv, err)
                line = _one_line(err)
                assert "more than a float holds" in line, line
    assert 0 in outcomes


def test_sums_beyond_the_float_range_are_an_error_not_inf(capsys, tmp_path):
    # losses of about 0.69 weighted by 1e308: the mean is 0.69, but the weights' sum is beyond the float range
    (tmp_path / "w.csv").write_text("label,p,w\n1,0.5,1e308\n0,0.5,1e308\n")
    code, _, err = _run(["score", tmp_path / "w.csv", "--sample-weight", "w"], capsys)
    assert code == 2
    assert "the sample weights add up to more than a float holds" in _one_line(err)
    (tmp_path / "p.csv").write_text("label,p,w\n1,1e-300,1e306\n")
    code, _, err = _run(["score", tmp_path / "p.csv", "--sample-weight", "w"], capsys)
    assert code == 2
    assert "a row's loss 690.776 times its sample weight 1e+306 is more than a float holds" in _one_line(err)
    (tmp_path / "l.csv").write_text("label,a,b\n0,-1e308,1e308\n0,-1e308,1e308\n")  # two losses of 2e308... no: inf
    code, out, err = _run(["score", tmp_path / "l.csv", "--logits", "a,b", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["mean_loss"] == "inf"  # each loss is beyond the range itself: inf is its value
    (tmp_path / "h.csv").write_text("label,a,b\n0,-1e308,0\n0,-1e308,0\n")  # two losses of 1e308: the sum overflows
    code, _, err = _run(["score", tmp_path / "h.csv", "--logits", "a,b"], capsys)
    assert code == 2
    assert "the weighted losses add up to more than a float holds" in _one_line(err)


def test_pieces_starting_inside_a_long_line_read_from_the_next_line(tmp_path):
    # a Dask piece that starts in the middle of a 3 MB line skips to the next line in linear time and memory
    from crossentropy.io import open_table

    lines = ["label,p", "1,0." + "1" * 3_000_000, *(f"{i % 2},0.{i}" for i in range(1, 2000))]
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n")
    table = open_table(str(tmp_path / "long.csv"))
    whole = [v for batch in table.batches(["label"]) for v in batch.numeric("label").values.tolist()]
    for target in (1 << 16, 1 << 20, 700_001):
        parts = [
            v
            for piece in table.split(target)
            for b in piece.batches(["label"])
            for v in b.numeric("label").values.tolist()
        ]
        assert parts == whole, target
