"""Fuzz the CLI's file readers with atheris: any bytes must score or fail with InputError.

    python tests/fuzz/fuzz_readers.py -atheris_runs=200000     # a longer run
    python tests/fuzz/fuzz_readers.py -max_total_time=600       # ten minutes

CI runs a bounded number of inputs (tests/test_fuzz.py). Each input is
written as a CSV, a Parquet, an NPY and an NPZ file and scored; an exception
other than InputError is a finding (atheris prints the input that caused it).
Findings (``crash-*``, ``timeout-*`` files) are written to a temporary
directory, never to the working directory, unless ``-artifact_prefix=`` says
where.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from crossentropy._validation import InputError
    from crossentropy.scoring import score_file

SUFFIXES = (".csv", ".parquet", ".npy", ".npz", ".tsv")
DIRECTORY = tempfile.mkdtemp(prefix="crossentropy-fuzz-")


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    suffix = SUFFIXES[fdp.ConsumeIntInRange(0, len(SUFFIXES) - 1)]
    on_bad_row = "skip" if fdp.ConsumeBool() else "error"
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    if suffix in (".csv", ".tsv") and not body.startswith(b"label"):
        body = b"label,p0,p1\n" + body
    path = os.path.join(DIRECTORY, "input" + suffix)
    with open(path, "wb") as handle:
        handle.write(body)
    try:
        result = score_file(path, on_bad_row=on_bad_row)
    except InputError:
        return
    assert result["rows_read"] == result["rows_scored"] + result["rows_rejected"]


def main() -> None:
    argv = list(sys.argv)
    if not any(a.startswith("-artifact_prefix=") for a in argv):
        findings = tempfile.mkdtemp(prefix="crossentropy-fuzz-findings-")
        argv.insert(1, f"-artifact_prefix={findings}/")
        print(f"fuzz findings go to {findings}", file=sys.stderr)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
