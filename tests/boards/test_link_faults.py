"""Fault campaigns on the UART link, end to end through the bit-level serial model: every
run's results equal golden/'s, or the host raises an error that names what failed.

Faults are injected on the wire (boards.uart_sim.LineFaults: a flipped bit anywhere in a
character, a lost or repeated character, a glitch), in both directions, and the board is
restarted mid-job. A short campaign runs in `make test`; the long one is marked slow.
"""

import re

import numpy as np
import pytest

from boards.host import ATTEMPTS, LinkError, UARTArray, UARTEngine
from boards.uart_sim import LineFaults, simulated_board
from golden.layers import fully_connected
from hw.config import ArrayConfig, EngineConfig
from hw.host import LayerParams, engine_job
from sim.workload import random_workload

ARRAY = ArrayConfig(rows=2, cols=2, kmax=8)
ENGINE = EngineConfig(ArrayConfig(rows=2, cols=2, kmax=3, per_channel=True),
                      max_k=8, max_n=4, max_m=4)
#: Per character, each direction: a bad line (about one frame in five is hit).
NOISY = LineFaults(flip=0.01, drop=0.005, duplicate=0.005, noise=0.005)


def _engine_work(seed):
    """A random GEMM for ENGINE (K beyond a pass, ragged M and N) and golden's Y."""
    rng = np.random.default_rng(seed)
    m, k, n = (int(v) for v in rng.integers(1, [5, 9, 5]))
    x = rng.integers(-128, 128, (m, k), dtype=np.int64)
    w = rng.integers(-128, 128, (n, k), dtype=np.int64)
    params = LayerParams.for_config(
        ENGINE.array, n=n, bias=rng.integers(-500, 500, n),
        multiplier=rng.integers(1 << 30, 1 << 31, n), shift=rng.integers(-10, -5, n),
        output_zero_point=3, act_min=-120, act_max=120, input_zero_point=-5)
    expected = fully_connected(x, w, params.bias, input_zero_point=-5, weight_zero_point=0,
                               output_zero_point=3, multiplier=params.multiplier,
                               shift=params.shift, act_min=-120, act_max=120)
    return engine_job(ENGINE, x, w, params), expected


def campaign_run(kind, seed, *, faults=NOISY, resets=(), attempts=ATTEMPTS):
    """One job over a faulty line (``resets``: restart the board at those frames, counted from
    the session start). Returns ("exact" | "error: …", link stats, faults
    injected, cycles); a wrong result fails the test at once."""
    if kind == "array":
        work = random_workload(ARRAY, seed=seed, jobs=1)
        port = simulated_board(ARRAY, to_board=faults, to_host=faults, resets=resets,
                               seed=seed)
        host = UARTArray(ARRAY, port, attempts=attempts)
        run, expected = (lambda: host.run(work.jobs, work.params)), work.expected
    else:
        job, expected = _engine_work(seed)
        port = simulated_board(ENGINE, to_board=faults, to_host=faults, resets=resets,
                               seed=seed)
        host = UARTEngine(ENGINE, port, attempts=attempts)
        run = lambda: job.outputs(host.run(job))   # noqa: E731
    try:
        result = run()
    except LinkError as error:
        outcome = f"error: {error}"
    else:
        np.testing.assert_array_equal(result, expected,
                                      err_msg=f"a silent wrong answer ({kind}, seed {seed})")
        outcome = "exact"
    return outcome, host.link.stats, port.faults, port.cycles


@pytest.mark.parametrize("kind,seed", [("array", 1), ("engine", 2)])
def test_noisy_line_gives_exact_results(kind, seed):
    outcome, stats, faults, _ = campaign_run(kind, seed)
    assert outcome == "exact"
    assert faults.total > 0 and stats.retransmissions > 0     # the faults did bite


def test_board_restart_mid_job_is_reported():
    outcome, _, faults, _ = campaign_run("array", 0, faults=LineFaults(), resets=(3,))
    assert faults.reset == 1
    assert outcome.startswith("error: the board restarted during the job: the reply to frame")


def test_dead_line_names_the_frame():
    port = simulated_board(ARRAY, to_board=LineFaults(drop=1.0))
    host = UARTArray(ARRAY, port, attempts=2)
    work = random_workload(ARRAY, seed=0, jobs=1)
    with pytest.raises(LinkError, match=r"frame 0 \(session start\) was not answered in 2 "
                                        r"attempts: no reply \(timed out\); no reply"):
        host.run(work.jobs, work.params)


#: What a failed run may say: the frame retrying could not get through, or the restart.
NAMED_FAILURE = re.compile(r"error: (frame \d+ \(.+\) was not answered in \d+ attempts: |"
                           r"the board restarted during the job: the reply to frame \d+ )")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["array", "engine"])
def test_long_fault_campaign(kind):
    """Many seeds, a line twice as bad (5 % of characters hit each way), a restart in every
    fourth run: no wrong result ever (campaign_run fails at once on one), every failure names
    its frame, and retrying (16 attempts) mends most runs."""
    bad = LineFaults(flip=0.02, drop=0.01, duplicate=0.01, noise=0.01)
    outcomes = []
    for seed in range(8):
        resets = (2 + seed % 3,) if seed % 4 == 3 else ()
        outcome, _, _, _ = campaign_run(kind, 100 + seed, faults=bad, resets=resets,
                                        attempts=16)
        assert outcome == "exact" or NAMED_FAILURE.match(outcome), (seed, outcome)
        outcomes.append(outcome)
    assert outcomes.count("exact") >= len(outcomes) // 2, outcomes
