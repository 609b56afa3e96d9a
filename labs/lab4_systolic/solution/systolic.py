"""Lab 4: systolic dataflows, skew, fill and drain; cycles predicted and measured.

Fill in every TODO; ``qmac lab check 4`` grades this file (the cycle predictions against
measurements of qmac's RTL in Amaranth's simulator). ``python compare.py`` and
``python one_pass.py`` are the measuring steps.
"""

import numpy as np

#: SCALE-Sim's dataflows: output-, weight- and input-stationary.
DATAFLOWS = ("os", "ws", "is")


def skew(x):
    """The systolic input schedule of ``x`` [R, T] (R rows of an operand, T beats each): an
    [R, T + R − 1] int64 array whose row r is row r of x delayed by r cycles, zeros elsewhere.
    Column t is what enters the array's R rows at cycle t."""
    # SOLUTION: one zero-padded copy per row, shifted by its index.
    x = np.asarray(x)
    rows, beats = x.shape
    out = np.zeros((rows, beats + rows - 1), dtype=np.int64)
    for r in range(rows):
        out[r, r:r + beats] = x[r]
    return out
    # END SOLUTION


def scalesim_cycles(m, k, n, rows, cols, dataflow):
    """SCALE-Sim's analytical runtime of an M×K×N GEMM (x [M, K] times w [N, K]ᵀ) on a
    rows × cols array (Samajdar et al., ISPASS 2020).

    Each dataflow maps two GEMM dimensions onto the array (S_R onto rows, S_C onto columns) and
    streams the third (T): os: (S_R, S_C, T) = (M, N, K); ws: (K, N, M); is: (K, M, N). One
    fold takes 2·rows + cols + T − 2 cycles; there are ⌈S_R / rows⌉ · ⌈S_C / cols⌉ folds, run
    one after the other.
    """
    # SOLUTION: the mapping table, then the product of fold count and fold time.
    s_r, s_c, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    folds = -(-s_r // rows) * -(-s_c // cols)
    return folds * (2 * rows + cols + t - 2)
    # END SOLUTION


def os_pass_cycles(k, rows, latency, row_interval):
    """Cycles of one output-stationary pass on qmac's MacArray with no stalls: from the cycle
    its first operand beat is accepted to the cycle its last result row is delivered, both
    counted. The pass has ``k`` beats (one per cycle); its row 0 leaves ``latency`` cycles
    after the last beat is accepted (``MacArray.latency``), and the ``rows`` rows leave
    ``row_interval`` cycles apart (``MacArray.row_interval``)."""
    # SOLUTION: k beats, then the latency to row 0, then the remaining rows.
    return k + latency + (rows - 1) * row_interval
    # END SOLUTION


def ws_batch_cycles(b, latency):
    """Cycles of ``b`` activations through a weight-stationary MacArray whose weights are
    already loaded, no stalls: from the first activation accepted to the last result row
    delivered, both counted. An activation's row leaves ``latency`` cycles after it is
    accepted, one row per cycle."""
    # SOLUTION: b beats in a row, the last one's result latency cycles later.
    return b + latency
    # END SOLUTION


def utilization(m, k, n, rows, cols, cycles):
    """The fraction of the array's peak MAC rate an M×K×N GEMM used: M·K·N MACs over
    rows · cols · cycles."""
    # SOLUTION: useful MACs over MAC slots.
    return m * k * n / (rows * cols * cycles)
    # END SOLUTION
