"""golden against recorded outputs of the TFLite 2.14 interpreter (BUILTIN_REF and BUILTIN).

tests/golden/data/tflite_2_14_oracle.json.gz holds every case of tests/golden/oracle.py's
suites with the interpreter's outputs, written by tools/record_oracle.py in the oracle
environment. This test needs no TFLite: it recomputes golden's output from each recorded
model description and compares it element for element, so CI checks golden against the
real interpreter too. test_oracle.py does the same live when the environment exists.
The recording was made on glibc 2.36: LOGISTIC/TANH tables follow the C library's
expf/tanhf (as TFLite does), so a platform with another libm may differ in rare codes.
"""

import pytest

from .oracle import RECORDING, SUITES, compare, golden_output, load_recording

RECORDS = load_recording() if RECORDING.exists() else {}


def test_every_suite_is_recorded():
    assert sorted(RECORDS) == sorted(SUITES), "run tools/record_oracle.py after changing SUITES"


@pytest.mark.parametrize("suite", sorted(RECORDS))
def test_recorded_suite(suite):
    record = RECORDS[suite]
    cases = record["cases"]
    compare(cases, record["results"],
            [golden_output(c, record["resolver"]) for c in cases])


@pytest.mark.parametrize("suite", sorted(RECORDS))
def test_recorded_cases_are_the_suites(suite):
    """The recording is of the cases the suites make today (same seeds, same models)."""
    make, _ = SUITES[suite]
    assert RECORDS[suite]["cases"] == make()
