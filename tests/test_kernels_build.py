"""The kernels' build, variants, threads and fork safety (issues 17 and 18)."""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _kernels
from crossentropy._kernels import _library, _threads

pytestmark = pytest.mark.slow  # compilers and fresh interpreters

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "src" / "crossentropy" / "_kernels"
needs_kernels = pytest.mark.skipif(not _kernels.available(), reason="the CPU kernels are not built")


THREAD_VARIABLES = ("CROSSENTROPY_NUM_THREADS", "OMP_NUM_THREADS", "CROSSENTROPY_ISA", "CROSSENTROPY_DISABLE_KERNELS")
"""Variables a child starts without unless a test sets them (Dask's workers leave OMP_NUM_THREADS=1 behind)."""


def run_python(code: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**inherited, **env},
        check=False,
    )


# --- threads ------------------------------------------------------------------------------------------------

CALL = """
import numpy as np, crossentropy as ce
from crossentropy import _kernels
x = np.random.default_rng(0).normal(size=(4096, 64)).astype(np.float32)
print(_kernels.num_threads(), _kernels.describe()["threads_source"])
print(float(ce.sparse_categorical_cross_entropy(np.zeros(4096, int), x, from_logits=True)))
"""


@needs_kernels
@pytest.mark.parametrize("value", ["100000", "99999999999", "2147483648", "0", "-3", "abc", ""])
def test_absurd_thread_counts_are_clamped_or_ignored(value):
    proc = run_python(CALL, CROSSENTROPY_NUM_THREADS=value)
    assert proc.returncode == 0, proc.stderr
    threads = int(proc.stdout.split()[0])
    assert threads == _threads.usable_cpus()[0]
    if value in ("0", "-3", "abc"):
        assert "ignored" in proc.stdout


def test_thread_policy_precedence(monkeypatch):
    cpus = _threads.usable_cpus()[0]
    monkeypatch.delenv("CROSSENTROPY_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1,2")
    assert _threads.policy() == (1, "OMP_NUM_THREADS")
    monkeypatch.setenv("CROSSENTROPY_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", str(cpus))
    assert _threads.policy() == (1, "CROSSENTROPY_NUM_THREADS")
    monkeypatch.delenv("CROSSENTROPY_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _threads.policy()[0] == cpus
    if cpus > 1:
        assert _threads.policy(limit=1) == (1, "threadpoolctl")


def test_small_work_runs_on_one_thread():
    assert _threads.for_work(8, 8 * 5) == 1
    assert _threads.for_work(8, _threads.MIN_WORK_PER_THREAD * 3) == 3
    assert _threads.for_work(2, 10**9) == 2


def test_cgroup_quotas(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _threads._cgroup_quota(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _threads._cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _threads._cgroup_quota(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _threads._cgroup_quota(tmp_path) is None


@needs_kernels
def test_threadpoolctl_limits_the_kernels(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    _kernels.library()
    infos = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "crossentropy"]
    assert len(infos) == 1
    assert infos[0]["num_threads"] == _kernels.num_threads()
    with threadpoolctl.threadpool_limits(limits=1):
        assert _kernels.num_threads() == 1
        assert _kernels.describe()["threads_source"] in ("threadpoolctl", "CPU affinity", "cgroup CPU quota")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _kernels.num_threads() == 1
    assert _kernels.num_threads() == _threads.policy()[0]


# --- fork safety -------------------------------------------------------------------------------------------

FORK = """
import os, numpy as np, crossentropy as ce
from crossentropy import _kernels
x = np.random.default_rng(0).normal(size=(2048, 512))
t = np.zeros(2048, int)
def f():
    return float(ce.sparse_categorical_cross_entropy(t, x, from_logits=True))
expected = f()
assert _kernels.library().ce_pool_workers() >= 1, "the parent never used its pool"
pid = os.fork()
if pid == 0:
    ok = _kernels.library().ce_pool_workers() == 0 and f() == expected
    ok = ok and _kernels.library().ce_pool_workers() >= 1
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""

POOL = """
import multiprocessing as mp, numpy as np, crossentropy as ce
x = np.random.default_rng(0).normal(size=(2048, 512)).astype(np.float32)
def f(i):
    return float(ce.sparse_categorical_cross_entropy(np.full(2048, i), x, from_logits=True))
if __name__ == "__main__":
    expected = [f(i) for i in range(4)]
    with mp.get_context("fork").Pool(2) as pool:
        assert pool.map(f, range(4)) == expected
    print("ok")
"""


@needs_kernels
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_kernels_work_in_a_forked_child():
    proc = run_python(FORK, timeout=60, CROSSENTROPY_NUM_THREADS="2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


@needs_kernels
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_multiprocessing_fork_pool(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CROSSENTROPY_NUM_THREADS": "2"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# --- instruction-set variants --------------------------------------------------------------------------------


@needs_kernels
def test_variant_forced_by_environment():
    code = "from crossentropy import _kernels; d = _kernels.describe(); print(d['isa'], '|', d['isa_note'])"
    for isa in _kernels.describe()["variants_supported"]:
        proc = run_python(code, CROSSENTROPY_ISA=isa)
        assert proc.stdout.split("|")[0].strip() == isa, proc.stderr
    proc = run_python(code, CROSSENTROPY_ISA="vax")
    assert proc.stdout.split("|")[0].strip() == _kernels.describe()["variants_supported"][0]
    assert "CROSSENTROPY_ISA=vax ignored" in proc.stdout
    with pytest.raises(ValueError, match="not available"):
        _library.bind(_library.load(), "vax")


@needs_kernels
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 variants only")
@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads Linux's /proc/cpuinfo")
def test_the_cpu_features_are_those_linux_reports():
    """The library reads CPUID itself (Zig's compiler runtime answers nothing to __builtin_cpu_supports)."""
    line = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    flags = set(line.split(":", 1)[1].split())
    expected = 1
    if {"avx2", "fma", "bmi2"} <= flags:
        expected |= 2
        if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
            expected |= 4
    assert _library.load().lib.ce_cpu_features() == expected


def _functions(disassembly: str) -> dict[str, list[str]]:
    functions: dict[str, list[str]] = {}
    current: list[str] = []
    for line in disassembly.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if header:
            current = functions.setdefault(header.group(1), [])
        elif "\t" in line:
            current.append(line.split("\t", 1)[1].strip())
    return functions


@needs_kernels
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 variants only")
@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump is not installed")
def test_baseline_code_has_no_avx_and_only_the_avx512_clones_use_avx512():
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(_library.PATH)], capture_output=True, text=True, check=True
    ).stdout
    functions = _functions(out)
    assert any(name.endswith("_avx512") for name in functions)
    evex = re.compile(r"%zmm|%k[0-7]|\{%k|%[xy]mm(1[6-9]|2[0-9]|3[01])\b")
    for name, instructions in functions.items():
        if "_avx512" in name:
            continue
        wide = [i for i in instructions if evex.search(i)]
        assert not wide, f"{name} uses AVX-512 outside the avx512 variant: {wide[:3]}"
        if "_avx2" not in name:  # the baseline variant, the runtime and the dispatcher: x86-64-v2, no AVX
            avx = [i for i in instructions if re.match(r"v[a-z]", i)]
            assert not avx, f"{name} uses AVX in the baseline: {avx[:3]}"


# --- the build never fails the install -------------------------------------------------------------------------


def _hook_module():
    """hatch_build.py, importable without hatchling (its compile step needs only the standard library)."""
    interface = types.ModuleType("hatchling.builders.hooks.plugin.interface")
    interface.BuildHookInterface = object  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("hatchling", "hatchling.builders.hooks.plugin.interface")}
    sys.modules.setdefault("hatchling", types.ModuleType("hatchling"))
    sys.modules["hatchling.builders.hooks.plugin.interface"] = interface
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("_ce_hatch_build", ROOT / "hatch_build.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value


def _source_tree(tmp_path: Path) -> Path:
    target = tmp_path / "src" / "crossentropy" / "_kernels"
    target.mkdir(parents=True)
    for name in ("cpu.c", "cpu.h", "cpu_template.h", "runtime.c", "_build_id.py"):
        shutil.copy(KERNELS / name, target / name)
    return tmp_path


def test_a_missing_compiler_is_a_notice_not_a_failure(tmp_path, monkeypatch):
    hook = _hook_module()
    monkeypatch.setenv("CC", str(tmp_path / "nonexistent"))
    built, account = hook.compile_kernels(_source_tree(tmp_path))
    assert built is None
    assert "compiling cpu.c failed" in account
    assert "\n" not in account


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_a_strict_c11_compiler_builds_every_variant(tmp_path, monkeypatch):
    hook = _hook_module()
    monkeypatch.setenv("CC", "gcc -std=c11")
    root = _source_tree(tmp_path)
    built, account = hook.compile_kernels(root)
    assert built is not None, account
    expected = [name for name, _ in hook.variants()]
    assert f"({', '.join(expected)})" in account
    proc = run_python(
        f"import ctypes; lib = ctypes.CDLL({str(built)!r}); lib.ce_build_id.restype = ctypes.c_char_p; "
        "print(lib.ce_build_id().decode())"
    )
    from crossentropy._kernels._build_id import build_id

    assert proc.stdout.strip() == build_id(KERNELS)


ZIG_LIKE = """
import os, sys

args = []
for arg in sys.argv[1:]:
    if arg.startswith(("-mtune=", "-march=x86-64")):  # zig cc reads -march as a Zig CPU name: x86_64_v3
        sys.exit(f"error: unknown CPU in {arg}")
    args.append("-march=" + arg.removeprefix("-march=").replace("_", "-") if arg.startswith("-march=") else arg)
os.execvp("gcc", ["gcc", *args])
"""


TINY_CPU_C = """
#define CE_PASTE2(a, b) a##_##b
#define CE_PASTE(a, b) CE_PASTE2(a, b)
int CE_PASTE(ce_sparse_f32, CE_ISA)(void) { return 0; }
"""


def test_zig_spells_the_instruction_sets_its_own_way():
    hook = _hook_module()
    assert hook.spellings(["-march=x86-64-v3", "-mtune=generic"]) == [
        ["-march=x86-64-v3", "-mtune=generic"],
        ["-march=x86_64_v3"],
    ]
    assert hook.spellings(["-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=512"])[1] == [
        "-march=x86_64_v4",
        "-mprefer-vector-width=512",
    ]
    assert hook.spellings([]) == [[]]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 variants only")
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_a_compiler_that_spells_cpus_as_zig_does_builds_every_variant(tmp_path, monkeypatch):
    """``zig cc`` (.ci/wheels) refuses ``-march=x86-64-v3`` and ``-mtune=generic``: the build tries its spelling."""
    script = tmp_path / "zig like.py"
    script.write_text(ZIG_LIKE)
    hook = _hook_module()
    monkeypatch.setenv("CC", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")  # several words, quoted
    root = _source_tree(tmp_path)
    (root / "src" / "crossentropy" / "_kernels" / "cpu.c").write_text(TINY_CPU_C)  # the flags matter, not the code
    built, account = hook.compile_kernels(root)
    assert built is not None, account
    assert "(baseline, avx2, avx512)" in account
    proc = run_python(f"import ctypes; lib = ctypes.CDLL({str(built)!r}); print(hasattr(lib, 'ce_sparse_f32_avx512'))")
    assert proc.stdout.strip() == "True", proc.stderr


@needs_kernels
def test_a_stale_library_is_not_used(tmp_path, monkeypatch):
    stale = tmp_path / "_cpu.so"
    shutil.copy(_library.PATH, stale)
    for name in ("cpu.c", "cpu.h", "cpu_template.h", "runtime.c"):
        (tmp_path / name).write_text((KERNELS / name).read_text() + ("\n" if name == "cpu.c" else ""))
    monkeypatch.setattr(_library, "PATH", stale)
    loaded = _library._open()
    assert loaded.lib is None
    assert "stale build" in loaded.note


# --- crossentropy info ----------------------------------------------------------------------------------------


def test_info_command_reports_the_kernels(capsys):
    from crossentropy.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert ce.__version__ in out
    described = _kernels.describe()
    assert ("kernels: built" in out) == described["built"]
    if described["built"]:
        assert f"instruction set: {described['isa']}" in out
    assert f"threads: {described['threads']}" in out
    assert main(["info", "--format", "json"]) == 0
    import json

    facts = json.loads(capsys.readouterr().out)
    assert facts["version"] == ce.__version__
    assert facts["kernels"]["built"] == described["built"]


def test_info_without_kernels_says_so():
    proc = run_python(
        "from crossentropy.cli import main; main(['info'])", CROSSENTROPY_DISABLE_KERNELS="1", CROSSENTROPY_ISA=""
    )
    assert proc.returncode == 0, proc.stderr
    assert "reference path" in proc.stdout


def test_small_calls_use_one_thread_and_no_pool():
    x = np.zeros((8, 5))
    proc = run_python(
        """
        import numpy as np, crossentropy as ce
        from crossentropy import _kernels
        ce.sparse_categorical_cross_entropy(np.zeros(8, int), np.zeros((8, 5)), from_logits=True)
        lib = _kernels.library()
        print(0 if lib is None else lib.ce_pool_workers())
        """,
        CROSSENTROPY_NUM_THREADS="2",
    )
    assert proc.stdout.strip() == "0", proc.stderr
    assert ce.sparse_categorical_cross_entropy(np.zeros(8, int), x, from_logits=True) == pytest.approx(np.log(5))


def _transparent_huge_pages() -> str:
    """The system's transparent-huge-page mode (``always``, ``madvise``, ``never``), or ``""`` when it has none."""
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    match = re.search(r"\[(\w+)\]", path.read_text()) if path.exists() else None
    return match.group(1) if match else ""


def test_huge_page_advice_never_raises():
    from crossentropy._kernels import _memory

    assert not _memory.advise_huge_pages(0, 1 << 30)  # a tensor without storage
    assert not _memory.advise_huge_pages(1 << 21, _memory.MIN_BYTES - 1)  # too small to be worth it
    assert not _memory.advise_huge_pages(-4096, 1 << 30)
    # an unmapped range: madvise fails (ENOMEM), the advice reports it and the process goes on
    assert not _memory.advise_huge_pages(1 << 46, 1 << 23)


@pytest.mark.skipif(_transparent_huge_pages() not in ("always", "madvise"), reason="no transparent huge pages here")
def test_a_large_cpu_gradient_is_advised_onto_huge_pages(monkeypatch):
    torch = pytest.importorskip("torch")
    import crossentropy.torch as cet
    from crossentropy._kernels import autograd

    advised = []
    real = autograd.advise_huge_pages

    def spy(address: int, nbytes: int) -> bool:
        advised.append((nbytes, real(address, nbytes)))
        return advised[-1][1]

    monkeypatch.setattr(autograd, "advise_huge_pages", spy)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1024, 2048, generator=g)  # 8 MB of float32
    labels = torch.randint(0, 2048, (1024,), generator=g)
    ours, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    cet.cross_entropy(ours, labels).backward()
    torch.nn.functional.cross_entropy(theirs, labels).backward()
    assert (logits.numel() * 4, True) in advised
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-9)
