"""Lab 6: the GEMM engine: tiling, partial sums across K, where utilization goes.

Fill in every TODO; ``qmac lab check 6`` grades this file (the cycle bounds against qmac's
output-stationary GemmEngine measured in Amaranth's simulator). ``python sweep.py`` measures
and plots utilization against shape.
"""


def ceil_div(a, b):
    """⌈a / b⌉ for positive ints, in integers."""
    # SOLUTION: floor division of the negation.
    return -(-a // b)
    # END SOLUTION


def tile_counts(m, k, n, rows, cols, kmax):
    """(m_tiles, n_tiles, passes): an M×K×N GEMM on a rows × cols output-stationary engine
    whose passes are at most ``kmax`` beats deep. M is cut into tiles of ``rows`` rows, N into
    tiles of ``cols`` channels (the last tile of each padded with zeros), and each of the
    m_tiles · n_tiles output tiles takes ``passes`` passes over K, whose exact partial sums
    the engine adds up."""
    # SOLUTION: three ceilings.
    return ceil_div(m, rows), ceil_div(n, cols), ceil_div(k, kmax)
    # END SOLUTION


def padded_utilization(m, k, n, rows, cols):
    """The best utilization padding allows: the useful M·K·N MACs over the MACs the tiles
    compute, (m_tiles · rows) · K · (n_tiles · cols)."""
    # SOLUTION: useful over padded work.
    return m * k * n / (ceil_div(m, rows) * rows * k * ceil_div(n, cols) * cols)
    # END SOLUTION


def issue_cycles(m, k, n, rows, cols, kmax):
    """Cycles the sequencer needs to issue every beat: one beat per cycle, every output tile
    runs its passes (K cut into passes of kmax beats, the last one shorter), and a pass lasts
    at least the engine's pass interval max(rows, cols, 2) cycles (its readout must finish
    before the next pass's sums arrive)."""
    # SOLUTION: the pass lengths, each at least the pass interval, for every tile.
    interval = max(rows, cols, 2)
    lengths = [min(kmax, k - start) for start in range(0, k, kmax)]
    m_tiles, n_tiles, _ = tile_counts(m, k, n, rows, cols, kmax)
    return m_tiles * n_tiles * sum(max(length, interval) for length in lengths)
    # END SOLUTION


def cycle_bound(m, k, n, rows, cols, kmax, row_interval):
    """A lower bound on the engine's cycles: its two rate limits, whichever is slower. The
    grid issues beats (:func:`issue_cycles`); the requantizer delivers one result row every
    ``row_interval`` cycles, and there are m_tiles · n_tiles · rows result rows."""
    # SOLUTION: the slower of the two resources.
    m_tiles, n_tiles, _ = tile_counts(m, k, n, rows, cols, kmax)
    return max(issue_cycles(m, k, n, rows, cols, kmax), m_tiles * n_tiles * rows * row_interval)
    # END SOLUTION


def fill_drain_cycles(k, rows, latency, row_interval):
    """What one command adds to :func:`cycle_bound` at most: the first M tile's K beats must
    load before its first pass (plus 2 cycles to feed the grid), and after the last beat
    issues, ``latency`` cycles to the last tile's row 0 and ``rows`` rows ``row_interval``
    cycles apart. (Every later tile loads while the one before computes: double buffering.)"""
    # SOLUTION: fill, feed, latency, and the last tile's rows.
    return k + 2 + latency + rows * row_interval
    # END SOLUTION
