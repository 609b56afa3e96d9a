"""golden against the TFLite interpreter itself (tflite-runtime 2.14, BUILTIN_REF), live.

Every suite of tests/golden/oracle.py (random single-op int8 models of each op) runs on the
interpreter in the oracle environment and every output element is compared with golden's
output of the same model description. The environment (`bash tools/make_oracle_env.sh`,
.venv-tflite) needs numpy < 2, so the interpreter runs in a subprocess; without it this
module is skipped, and test_oracle_recorded.py compares with recorded outputs instead.
QMAC_ORACLE_RESOLVER=BUILTIN runs the suites on the optimized kernels (a measurement:
golden follows the reference kernels).
"""

import numpy as np
import pytest

from .oracle import ORACLE_PYTHON, SUITES, case, compare, golden_output, run_oracle, tensor

if not ORACLE_PYTHON.exists():
    pytest.skip(f"no TFLite oracle environment at {ORACLE_PYTHON.parent.parent} "
                "(bash tools/make_oracle_env.sh makes it)", allow_module_level=True)


@pytest.mark.parametrize("suite", list(SUITES))
def test_suite_against_the_interpreter(suite):
    make, resolver = SUITES[suite]
    cases = make()
    compare(cases, run_oracle(cases, resolver), [golden_output(c, resolver) for c in cases])


def test_int8_concatenation_with_different_scales_is_refused_by_tflite():
    x = np.zeros((1, 2), dtype=np.int64)
    refused = run_oracle([case("CONCATENATION", [tensor((1, 2), 0.1, 0), tensor((1, 2), 0.2, 0),
                                                 tensor((1, 4), 0.2, 0)], [0, 1], [2],
                               {0: x, 1: x}, axis=1)])
    assert "error" in refused[0]
