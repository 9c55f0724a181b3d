"""The pytest plugin seen from a user's project: inner pytest runs with ``pytester``.

Every inner run is in-process, in a fresh temporary directory with its own test file and
ini, and selects cheap backends where the point allows it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json

import pytest

from portable_nn import _backend

pytest_plugins = ["pytester"]

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_STRICT = importlib.util.find_spec("array_api_strict") is not None

TEST_ALL_AXES = """
def test_axes(backend, xp, device, dtype):
    assert xp.__name__
"""


@pytest.fixture(autouse=True, scope="module")
def backends_imported_once():
    """Import every installed backend (and hypothesis, which its pytest plugin imports late) here.

    pytester's in-process runs drop the modules a run imported when it ends; re-importing
    torch/jax/dask/hypothesis on every run is slow and breaks dask (it looks NumPy modules up again).
    """
    for name in _backend.installed_backends():
        _backend.resolve_namespace(name)
    with contextlib.suppress(ImportError):
        import hypothesis  # noqa: F401


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """The outer run's selection variables must not leak into the inner runs."""
    for name in ("PORTABLE_NN_BACKENDS", "PORTABLE_NN_DEVICES", "PORTABLE_NN_DTYPES"):
        monkeypatch.delenv(name, raising=False)


def collected_ids(result: pytest.RunResult) -> list[str]:
    """Parametrization ids of the collected tests (``-q --collect-only`` output)."""
    return [line.split("[", 1)[1].rstrip("]") for line in result.outlines if "::" in line and "[" in line]


def backends_of(ids: list[str]) -> set[str]:
    return {i.split("-", 1)[0] for i in ids}


# ----------------------------------------------------------------------------- selection


@pytest.mark.skipif(not HAS_STRICT, reason="array_api_strict is not installed")
def test_backends_option_runs_only_those(pytester):
    pytester.makepyfile(TEST_ALL_AXES)
    result = pytester.runpytest("--backends", "numpy,array_api_strict", "-q", "--collect-only")
    ids = collected_ids(result)
    assert backends_of(ids) == {"numpy", "array_api_strict"}
    assert sorted(ids) == sorted(
        ["numpy-cpu-float32", "numpy-cpu-float64"]
        + [f"array_api_strict-{d}-{t}" for d in ("cpu", "device1") for t in ("float32", "float64")]
    )
    result = pytester.runpytest("--backends", "numpy,array_api_strict")
    result.assert_outcomes(passed=6)


def test_environment_variable_selects_backends(pytester, monkeypatch):
    pytester.makepyfile(TEST_ALL_AXES)
    monkeypatch.setenv("PORTABLE_NN_BACKENDS", "numpy")
    monkeypatch.setenv("PORTABLE_NN_DTYPES", "float64")
    assert collected_ids(pytester.runpytest("-q", "--collect-only")) == ["numpy-cpu-float64"]


def test_ini_keys_select_backends(pytester):
    pytester.makepyfile(TEST_ALL_AXES)
    pytester.makeini("[pytest]\npnn_backends = numpy\npnn_dtypes = float32\n")
    assert collected_ids(pytester.runpytest("-q", "--collect-only")) == ["numpy-cpu-float32"]


def test_pyproject_settings_select_backends(pytester):
    pytester.makepyfile(TEST_ALL_AXES)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\npnn_backends = "numpy"\npnn_dtypes = "float64"\n')
    assert collected_ids(pytester.runpytest("-q", "--collect-only")) == ["numpy-cpu-float64"]


def test_option_beats_environment_beats_ini(pytester, monkeypatch):
    pytester.makepyfile(TEST_ALL_AXES)
    pytester.makeini("[pytest]\npnn_backends = numpy\npnn_dtypes = float16\n")
    monkeypatch.setenv("PORTABLE_NN_DTYPES", "float64")
    assert collected_ids(pytester.runpytest("-q", "--collect-only")) == ["numpy-cpu-float64"]
    ids = collected_ids(pytester.runpytest("-q", "--collect-only", "--dtypes", "float32"))
    assert ids == ["numpy-cpu-float32"]


@pytest.mark.skipif(not HAS_STRICT, reason="array_api_strict is not installed")
def test_devices_option(pytester):
    pytester.makepyfile(TEST_ALL_AXES)
    result = pytester.runpytest("--backends", "numpy,array_api_strict", "--devices", "device2", "--dtypes", "float32")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*array_api_strict*device2*float32*1*", "*numpy has no device 'device2' here*"])


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_backend_device_pinning(pytester):
    import torch

    pytester.makepyfile(TEST_ALL_AXES + "\n\ndef test_namespace_only(xp):\n    pass\n")
    result = pytester.runpytest("--backends", "torch:cuda", "--dtypes", "float32", "-rs")
    ids = collected_ids(pytester.runpytest("-q", "--collect-only", "--backends", "torch:cuda", "--dtypes", "float32"))
    if torch.cuda.is_available():
        assert all(i.startswith("torch-cuda") for i in ids)
        result.assert_outcomes(passed=len(ids))
    else:
        assert ids == ["torch-cuda-float32", "torch-cuda"]
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines(["*SKIPPED*torch: no CUDA device on this machine*"])


def test_dtypes_option_runs_what_each_backend_has(pytester):
    pytester.makepyfile(TEST_ALL_AXES)
    args = ["--backends", "numpy,array_api_strict" if HAS_STRICT else "numpy", "--dtypes", "float16,bfloat16", "-rs"]
    result = pytester.runpytest(*args)
    result.stdout.fnmatch_lines(["*numpy on cpu has no bfloat16*"])
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1  # numpy float16
    if HAS_STRICT:
        result.stdout.fnmatch_lines(["*array_api_strict on cpu has no float16*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "numpy,tensorflow"], "unknown backend 'tensorflow' in --backends"),
        (["--backends", "mxnet:gpu"], "unknown backend 'mxnet:gpu'"),
        (["--dtypes", "float8"], "unknown dtype 'float8' in --dtypes"),
    ],
)
def test_unknown_names_are_usage_errors(pytester, args, message):
    pytester.makepyfile(TEST_ALL_AXES)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_unknown_backend_from_environment_is_a_usage_error(pytester, monkeypatch):
    pytester.makepyfile(TEST_ALL_AXES)
    monkeypatch.setenv("PORTABLE_NN_BACKENDS", "theano")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backend 'theano'*"])


def test_tests_without_the_fixtures_are_left_alone(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--backends", "numpy")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*portable_nn backend matrix*")


# ----------------------------------------------------------------------------- markers

MARKED = """
import pytest

@pytest.mark.backends(only=["numpy"], reason="numpy-only API")
def test_only(xp):
    pass

@pytest.mark.backends(exclude=["numpy"], reason="numpy is the oracle")
def test_exclude(xp):
    pass

@pytest.mark.backends(xfail=["array_api_strict"], reason="known strict failure")
def test_xfail(backend):
    assert backend != "array_api_strict"

@pytest.mark.backends(xfail=["numpy"], reason="fixed meanwhile")
def test_unexpected_pass(backend):
    pass

@pytest.mark.backends(only=["array_api_strict:device1"], reason="one device")
def test_pinned_marker(xp, device):
    pass

@pytest.mark.requires_float64
def test_needs_float64(xp, device):
    pass

@pytest.mark.eager
def test_eager(xp):
    pass
"""


@pytest.mark.skipif(not HAS_STRICT, reason="array_api_strict is not installed")
def test_markers(pytester):
    pytester.makepyfile(MARKED)
    report = pytester.path / "matrix.json"
    result = pytester.runpytest(
        "--backends", "numpy,array_api_strict,dask", "--devices", "cpu,device1,no_float64",
        "-rfsxX", f"--backend-report={report}",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*array_api_strict: test runs only on numpy (numpy-only API)",
            "SKIPPED*numpy: excluded (numpy is the oracle)",
            "SKIPPED*array_api_strict on no_float64 has no float64",
            "SKIPPED*dask: lazy, skipped eager-only test",
        ]
    )
    result.stdout.fnmatch_lines(["*XFAIL*test_xfail*array_api_strict: known strict failure*"])
    result.stdout.fnmatch_lines(["*FAILED*test_unexpected_pass*numpy*XPASS(strict)*"])
    rows = json.loads(report.read_text())["combinations"]
    by_id = {(r["backend"], r["device"]): r for r in rows}
    assert by_id[("array_api_strict", "cpu")]["xfailed"] == 1
    assert by_id[("array_api_strict", "cpu")]["xfail_reasons"] == {"array_api_strict: known strict failure": 1}
    assert by_id[("numpy", "cpu")]["failed"] == 1  # the strict XPASS
    assert by_id[("array_api_strict", "device1")]["passed"] >= 2  # pinned marker + requires_float64
    assert (
        by_id[("array_api_strict", "no_float64")]["skip_reasons"]["array_api_strict on no_float64 has no float64"] == 1
    )


# ----------------------------------------------------------------------------- matrix report


@pytest.mark.skipif(not HAS_STRICT, reason="array_api_strict is not installed")
def test_matrix_is_printed_at_the_end(pytester):
    pytester.makepyfile(TEST_ALL_AXES + "\n\ndef test_fails(backend):\n    assert backend == 'numpy'\n")
    result = pytester.runpytest("--backends", "numpy,array_api_strict")
    result.stdout.fnmatch_lines(
        [
            "*= portable_nn backend matrix =*",
            "backend*device*dtype*passed*failed*error*skipped*xfail*reasons",
            "array_api_strict*cpu*-*0*1*0*0*0*",
            "array_api_strict*cpu*float32*1*0*0*0*0*",
            "array_api_strict*device1*float64*1*0*0*0*0*",
            "numpy*cpu*-*1*0*0*0*0*",
            "numpy*cpu*float32*1*0*0*0*0*",
            "numpy*cpu*float64*1*0*0*0*0*",
        ]
    )
    matrix_line = next(i for i, line in enumerate(result.outlines) if "portable_nn backend matrix" in line)
    assert matrix_line > next(i for i, line in enumerate(result.outlines) if "FAILURES" in line)


def test_json_report_lists_every_combination(pytester):
    pytester.makepyfile(TEST_ALL_AXES + "\n\nimport pytest\n\ndef test_skips(xp):\n    pytest.skip('not today')\n")
    pytester.mkdir("reports")
    result = pytester.runpytest("--backends", "numpy,cupy", "--backend-report=reports/matrix.json")
    result.stdout.fnmatch_lines(["backend matrix written to *reports*matrix.json"])
    data = json.loads((pytester.path / "reports" / "matrix.json").read_text())
    assert data["selection"] == {"backends": ["numpy", "cupy"], "devices": "default", "dtypes": "default"}
    keys = {(r["backend"], r["device"], r["dtype"]) for r in data["combinations"]}
    assert {("numpy", "cpu", "float32"), ("numpy", "cpu", "float64"), ("numpy", "cpu", None)} <= keys
    cupy_devices = {device for backend, device, _ in keys if backend == "cupy"}
    assert cupy_devices, "cupy must be listed even where it cannot run"
    assert {(b, dt) for b, _, dt in keys} == {(b, dt) for b in ("numpy", "cupy") for dt in ("float32", "float64", None)}
    for row in data["combinations"]:
        assert set(row) == {
            "backend", "device", "dtype", "passed", "failed", "error", "skipped", "xfailed", "xpassed",
            "skip_reasons", "xfail_reasons",
        }  # fmt: skip
        assert sum(row["skip_reasons"].values()) == row["skipped"]
    numpy_plain = next(r for r in data["combinations"] if r["backend"] == "numpy" and r["dtype"] is None)
    assert numpy_plain["skipped"] == 1 and numpy_plain["skip_reasons"] == {"not today": 1}
    if importlib.util.find_spec("cupy") is None:
        cupy_rows = [r for r in data["combinations"] if r["backend"] == "cupy"]
        assert all(r["skip_reasons"] == {"cupy is not installed": r["skipped"]} for r in cupy_rows)
    totals = data["totals"]
    for key in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        assert totals[key] == sum(r[key] for r in data["combinations"])
    outcomes = result.parseoutcomes()
    outcomes.pop("warnings", None)  # not test outcomes (e.g. pytest's own about module rewriting)
    assert totals["passed"] + totals["skipped"] == sum(outcomes.values())


def test_row_of_a_combination_that_cannot_run_gives_its_own_skip_reason(pytester):
    """A pair test (a second skip-marked parameter, like conformance's ``target``): each row names its own reason."""
    pytester.makepyfile(
        "import pytest\n\n"
        "def pytest_generate_tests(metafunc):\n"
        "    if 'target' in metafunc.fixturenames:\n"
        "        skip = pytest.mark.skip(reason='target missing')\n"
        "        metafunc.parametrize('target', [pytest.param(1, marks=skip)])\n\n"
        "def test_pair(xp, target):\n    pass\n"
    )
    pytester.runpytest("--backends", "numpy,cupy", "--backend-report=matrix.json")
    rows = {r["backend"]: r for r in json.loads((pytester.path / "matrix.json").read_text())["combinations"]}
    assert rows["numpy"]["skip_reasons"] == {"target missing": 1}
    if importlib.util.find_spec("cupy") is None:
        assert rows["cupy"]["skip_reasons"] == {"cupy is not installed": 1}
    else:  # cupy installed: its row has its own reason (no GPU) or runs into the target's skip
        assert sum(rows["cupy"]["skip_reasons"].values()) == 1


def test_backend_report_space_form_is_a_usage_error(pytester):
    """``--backend-report out.json``: pytest would take an existing out.json for a test path (rootdir)."""
    pytester.makepyfile("def test_ok(xp):\n    pass\n")
    (pytester.path / "out.json").write_text("{}")
    result = pytester.runpytest("--backends", "numpy", "--backend-report", "out.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*write --backend-report=out.json (with '=')*"])


# ----------------------------------------------------------------------------- selections that would test nothing


@pytest.mark.parametrize(
    "args",
    [
        ["--backends", "numpy", "--devices", "nosuch"],
        ["--backends", "numpy", "--devices", "CPU"],
        ["--backends", "numpy,torch", "--devices", "cuda:-1"],
        ["--backends", "numpy", "--devices", "cuda"],  # numpy has no GPU anywhere
        ["--backends", "numpy:nosuch"],
        ["--backends", "numpy", "--devices", "device1"],  # an array-api-strict device, not numpy's
    ],
    ids=["nosuch", "CPU", "cuda:-1", "numpy-cuda", "pinned-nosuch", "device1-of-numpy"],
)
def test_a_device_no_selected_backend_could_have_is_a_usage_error(pytester, args):
    pytester.makepyfile(TEST_ALL_AXES)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*names no device of*the selection would skip every test*"])


def test_a_device_from_the_environment_is_checked_too(pytester, monkeypatch):
    pytester.makepyfile(TEST_ALL_AXES)
    monkeypatch.setenv("PORTABLE_NN_DEVICES", "nosuch")
    result = pytester.runpytest("--backends", "numpy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_dtype_no_selected_backend_has_is_a_usage_error(pytester):
    pytester.makepyfile(TEST_ALL_AXES)
    result = pytester.runpytest("--backends", "numpy", "--dtypes", "bfloat16")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no selected backend here has dtype bfloat16*numpy on cpu: float16, float32*"])


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_a_device_this_machine_lacks_is_still_a_stated_skip(pytester):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: torch:cuda runs")
    pytester.makepyfile(TEST_ALL_AXES)
    result = pytester.runpytest("--backends", "torch", "--devices", "cuda:1", "--dtypes", "float32", "-rs")
    result.assert_outcomes(skipped=1)


def test_repeated_names_run_once(pytester):
    pytester.makepyfile(TEST_ALL_AXES)
    args = ["--backends", "numpy,numpy", "--devices", "cpu,cpu", "--dtypes", "float32,float32,float64"]
    ids = collected_ids(pytester.runpytest("-q", "--collect-only", *args))
    assert ids == ["numpy-cpu-float32", "numpy-cpu-float64"]
    pytester.runpytest(*args).assert_outcomes(passed=2)


@pytest.mark.parametrize("where", ["missing/matrix.json", "folder/"])
def test_backend_report_path_is_checked_before_the_run(pytester, where):
    pytester.makepyfile("def test_ok(xp):\n    pass\n")
    pytester.mkdir("folder")
    result = pytester.runpytest("--backends", "numpy", f"--backend-report={where}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--backend-report={where}: *"])
    assert "passed" not in result.stdout.str()


@pytest.mark.parametrize("count", ["0", "-1", "two", "00"])
def test_jax_cpu_devices_must_be_positive(pytester, monkeypatch, count):
    pytester.makepyfile("def test_ok():\n    pass\n")
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # the outer run's flags would skip the check
    monkeypatch.setenv("PORTABLE_NN_JAX_CPU_DEVICES", count)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*PORTABLE_NN_JAX_CPU_DEVICES must be a positive integer*got {count!r}*"])
