"""The engine's activation table on the Verilog paths: the fast harness (compiled with the
table stream) against golden's TFLite LOGISTIC, and against the cocotb bench cycle for cycle
(same outputs and cycle count for the same stall and seed)."""

import numpy as np
import pytest

from golden import ops
from golden.layers import fully_connected
from hw.config import ArrayConfig, EngineConfig
from hw.host import LayerParams, engine_job
from sim import fast
from sim.gemm import gemm
from sim.runner import simulator_available

pytestmark = pytest.mark.skipif(not fast.available(), reason="needs Verilator and c++")

QUANT = dict(input_scale=0.05, input_zero_point=3)
SHIFT = -9


def _config(dataflow):
    array = ArrayConfig(rows=2, cols=3, dataflow=dataflow, per_channel=True,
                        kmax=None if dataflow == "weight_stationary" else 4)
    return EngineConfig(array, max_k=16, max_n=8, max_m=8, activation_table=True)


def _operands(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (5, 9)), rng.integers(-128, 128, (4, 9))


def test_fast_path_runs_the_table():
    """Three commands' worth of table use in one harness build (C++ at -O0: a quick build):
    loaded and looked up, and a job laid out for an engine without the table refused."""
    config = _config("output_stationary")
    x, w = _operands(1)
    params = LayerParams.for_config(config.array, n=4, multiplier=1 << 30, shift=SHIFT,
                                    output_zero_point=0, act_min=-128, act_max=127)
    y = fully_connected(x, w, None, input_zero_point=0, weight_zero_point=0,
                        output_zero_point=0, multiplier=1 << 30, shift=SHIFT, act_min=-128,
                        act_max=127)
    table = ops.logistic_table(**QUANT)
    for use_table, expected in ((True, ops.logistic(y, **QUANT)), (False, y)):
        job = engine_job(config, x, w, params, table=table, use_table=use_table)
        run = fast.run_engine(config, job, stall=0.3, seed=2, optimize=False)
        np.testing.assert_array_equal(job.outputs(run.rows), expected)
    plain = engine_job(config.replace(activation_table=False), x, w, params)
    with pytest.raises(ValueError, match="job has the streams command, channels, weights, "
                                         "activations, but the engine takes .*table"):
        fast.run_engine(config, plain, optimize=False)


@pytest.mark.slow
@pytest.mark.skipif(not simulator_available("verilator"), reason="needs Verilator")
@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_fast_path_matches_cocotb_with_the_table(dataflow):
    x, w = _operands(2)
    runs = [gemm(_config(dataflow), x, w, multiplier=1 << 30, shift=SHIFT,
                 table=ops.tanh_table(**QUANT), stall=0.3, seed=4, sim=sim)
            for sim in ("verilator", "verilator-cocotb")]
    np.testing.assert_array_equal(runs[0].y, runs[1].y)
    assert runs[0].cycles == runs[1].cycles
