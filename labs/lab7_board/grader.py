"""Lab 7 autograder: summarize() on report.json data the grader makes up (no FPGA build),
tiling against the grader's own indexing, and a layer over the simulated UART (host driver ↔
bit-level UART ↔ RTL in Amaranth's simulator) against golden/."""

import numpy as np

from boards.uart_sim import simulated_board
from golden.layers import fully_connected
from hw.config import ArrayConfig
from labs.grading import FORBIDDEN_IMPORTS, Lab, Part, require

CASES = 200
#: The student module drives the board through boards/ and hw/.
ALLOWED = ("boards", "hw")


def _report(rng):
    pes = int(rng.integers(1, 65))
    logic_available = int(rng.choice([5280, 7680, 83640, 8640]))
    report = {
        "pes": pes, "rows": pes, "cols": 1,
        "fmax_sync_mhz": float(rng.uniform(5, 120)),
        "sync_clock_mhz": float(rng.choice([12.0, 25.0, 48.0, 50.0])),
        "resources": {"logic": {"used": int(rng.integers(1, logic_available)),
                                "available": logic_available},
                      "ff": {"used": int(rng.integers(0, 999)), "available": logic_available}},
    }
    if rng.integers(2):
        available = int(rng.choice([8, 28, 156]))
        report["resources"]["dsp"] = {"used": int(rng.integers(0, available + 1)),
                                      "available": available}
    return report


def check_summarize(student, rng):
    for _ in range(CASES):
        report = _report(rng)
        got = student.summarize(report)
        logic, pes = report["resources"]["logic"], report["pes"]
        dsp = report["resources"].get("dsp", {"used": 0, "available": 0})
        expected = {
            "fmax_mhz": report["fmax_sync_mhz"], "clock_mhz": report["sync_clock_mhz"],
            "timing_pass": report["fmax_sync_mhz"] >= report["sync_clock_mhz"],
            "logic_percent": 100 * logic["used"] / logic["available"],
            "dsp": (dsp["used"], dsp["available"]),
            "logic_per_pe": logic["used"] / pes,
            "peak_gmacs": pes * report["sync_clock_mhz"] / 1000,
        }
        for key, value in expected.items():
            require(key in got, f"summarize(report) has no {key!r}")
            same = (tuple(got[key]) == value if key == "dsp" else
                    bool(got[key]) == value if key == "timing_pass" else
                    np.isclose(got[key], value, rtol=1e-12, atol=0))
            require(same, f"summarize(report)[{key!r}] is {got[key]!r}, expected {value!r} "
                          f"(report: {report})")


def check_tiling(student, rng):
    for _ in range(CASES // 4):
        rows, cols = (int(v) for v in rng.integers(1, 6, size=2))
        m, k, n = (int(v) for v in rng.integers(1, 14, size=3))
        x = rng.integers(-128, 128, size=(m, k))
        w = rng.integers(-128, 128, size=(n, k))
        jobs = student.tile_jobs(x, w, rows, cols)
        m_tiles, n_tiles = -(-m // rows), -(-n // cols)
        require(len(jobs) == m_tiles * n_tiles,
                f"tile_jobs of {m}×{k}×{n} on {rows}×{cols} gave {len(jobs)} jobs, expected "
                f"{m_tiles * n_tiles}")
        for index, (x_tile, w_tile) in enumerate(jobs):
            i, j = divmod(index, n_tiles)
            for r in range(rows):
                want = x[i * rows + r] if i * rows + r < m else np.zeros(k)
                require(np.array_equal(np.asarray(x_tile)[r], want),
                        f"tile_jobs job {index}: x row {r} should be x[{i * rows + r}] or zeros")
            for c in range(cols):
                want = w[j * cols + c] if j * cols + c < n else np.zeros(k)
                require(np.array_equal(np.asarray(w_tile)[c], want),
                        f"tile_jobs job {index}: w row {c} should be w[{j * cols + c}] or zeros")
        # untile: result rows built from the jobs by the grader's own indexing
        results = np.concatenate([np.asarray(xt) @ np.asarray(wt).T for xt, wt in jobs])
        y = np.asarray(student.untile(results, m, n, rows, cols))
        require(y.shape == (m, n) and np.array_equal(y, x @ w.T),
                f"untile(...) of {m}×{k}×{n} on {rows}×{cols} does not give back x·wᵀ")


def check_uart(student, rng):
    rows, cols = (int(v) for v in rng.integers(1, 3, size=2))
    config = ArrayConfig(rows=rows, cols=cols, kmax=4)
    m, n = int(rng.integers(1, 2 * rows + 1)), int(rng.integers(1, 2 * cols + 1))
    k = int(rng.integers(1, config.kmax + 1))
    x = rng.integers(-128, 128, size=(m, k))
    w = rng.integers(-127, 128, size=(n, k))
    multiplier, shift = int(rng.integers(1 << 30, 1 << 31)), -int(rng.integers(5, 9))
    zero_point = int(rng.integers(-20, 21))
    y = np.asarray(student.uart_layer(simulated_board(config), config, x, w, multiplier, shift,
                                      zero_point))
    expected = fully_connected(x, w, None, input_zero_point=0, weight_zero_point=0,
                               output_zero_point=zero_point, multiplier=multiplier, shift=shift,
                               act_min=-128, act_max=127)
    require(y.shape == expected.shape and np.array_equal(y, expected),
            f"uart_layer on a {rows}×{cols} array, {m}×{k}×{n}: y = {y.tolist()}, golden/ says "
            f"{expected.tolist()}")


LAB = Lab(
    number=7, title="The board: builds, reports, the UART", package="lab7_board",
    module="board", minutes=150,
    forbidden_imports=tuple(p for p in FORBIDDEN_IMPORTS if p not in ALLOWED),
    parts=(
        Part("summarize: a build's report.json", 2, ("summarize",), check_summarize),
        Part("tile_jobs / untile", 2, ("tile_jobs", "untile"), check_tiling),
        Part("uart_layer over the simulated UART, bit-exact", 3,
             ("uart_layer", "tile_jobs", "untile"), check_uart),
    ))
