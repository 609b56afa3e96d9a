"""Lab 7: the board. Read what a build reports, and run a layer over the UART (a real board,
or the simulated UART for students without one). Fill in every TODO; ``qmac lab check 7``
grades this file (no FPGA build: the grader makes its own report.json data, and runs the UART
in simulation)."""

import numpy as np

from boards.host import UARTArray


def summarize(report):
    """The figures of a ``qmac build`` report.json (a dict): {

    ``"fmax_mhz"``: the design's Fmax on its clock (``report["fmax_sync_mhz"]``),
    ``"clock_mhz"``: the clock it runs at (``report["sync_clock_mhz"]``),
    ``"timing_pass"``: whether Fmax ≥ that clock,
    ``"logic_percent"``: logic used over available (``report["resources"]["logic"]``), in %,
    ``"dsp"``: (used, available) DSP blocks (``report["resources"]["dsp"]``; (0, 0) without),
    ``"logic_per_pe"``: logic used per PE (``report["pes"]``),
    ``"peak_gmacs"``: PEs × clock_mhz / 1000, multiply-accumulates per ns at that clock }."""
    # SOLUTION: read the fields; compute the ratios.
    resources = report["resources"]
    logic = resources["logic"]
    dsp = resources.get("dsp", {"used": 0, "available": 0})
    fmax, clock = report["fmax_sync_mhz"], report["sync_clock_mhz"]
    return {
        "fmax_mhz": fmax,
        "clock_mhz": clock,
        "timing_pass": fmax >= clock,
        "logic_percent": 100 * logic["used"] / logic["available"],
        "dsp": (dsp["used"], dsp["available"]),
        "logic_per_pe": logic["used"] / report["pes"],
        "peak_gmacs": report["pes"] * clock / 1000,
    }
    # END SOLUTION


def tile_jobs(x, w, rows, cols):
    """Output-stationary jobs for an M×K×N layer on a rows × cols array: for each M tile (rows
    rows of x), for each N tile (cols rows of w), the pair (x_tile [rows, K], w_tile [cols, K]),
    the last tiles padded with zero rows."""
    # SOLUTION: pad to whole tiles, then slice.
    m, n = len(x), len(w)
    m_tiles, n_tiles = -(-m // rows), -(-n // cols)
    x = np.vstack([x, np.zeros((m_tiles * rows - m, x.shape[1]), dtype=x.dtype)])
    w = np.vstack([w, np.zeros((n_tiles * cols - n, w.shape[1]), dtype=w.dtype)])
    return [(x[i * rows:(i + 1) * rows], w[j * cols:(j + 1) * cols])
            for i in range(m_tiles) for j in range(n_tiles)]
    # END SOLUTION


def untile(result_rows, m, n, rows, cols):
    """y [M, N] from the result rows of :func:`tile_jobs`' jobs (rows rows of cols values per
    job, in job order), padding dropped."""
    # SOLUTION: put each job's rows × cols block back in its place.
    m_tiles, n_tiles = -(-m // rows), -(-n // cols)
    blocks = np.asarray(result_rows).reshape(m_tiles, n_tiles, rows, cols)
    return blocks.transpose(0, 2, 1, 3).reshape(m_tiles * rows, n_tiles * cols)[:m, :n]
    # END SOLUTION


def uart_layer(link, config, x, w, multiplier, shift, output_zero_point):
    """A fully connected int8 layer y = requantize(x·wᵀ) on the array behind the UART ``link``
    (``boards.host.open_serial(port)`` for a board, ``boards.uart_sim.simulated_board(config)``
    without one): per-tensor ``multiplier``/``shift`` (TFLite's M0 and shift), no bias, the
    full output range. x [M, K], w [N, K] with K ≤ config.kmax. Returns y [M, N]."""
    # SOLUTION: one parameter set serves every tile (no bias, per tensor); tile, run, untile.
    params = dict(bias=np.zeros(config.cols, dtype=np.int64),
                  multiplier=np.full(config.requant_channels, multiplier),
                  shift=np.full(config.requant_channels, shift),
                  output_zero_point=output_zero_point, act_min=config.out_range[0],
                  act_max=config.out_range[1], input_zero_point=0, weight_zero_point=0)
    rows = UARTArray(config, link).run(tile_jobs(x, w, config.rows, config.cols), params)
    return untile(rows, len(x), len(w), config.rows, config.cols)
    # END SOLUTION
