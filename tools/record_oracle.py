"""Record the TFLite 2.14 interpreter's outputs of every suite in tests/golden/oracle.py.

Writes tests/golden/data/tflite_2_14_oracle.json.gz (the cases and the interpreter's
outputs), which tests/golden/test_oracle_recorded.py compares golden with on machines
without the oracle environment. Needs the environment (bash tools/make_oracle_env.sh)::

    .venv/bin/python tools/record_oracle.py
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.golden.oracle import RECORDING, SUITES, run_oracle, save_recording  # noqa: E402


def main():
    if os.environ.get("QMAC_ORACLE_RESOLVER", "BUILTIN_REF") != "BUILTIN_REF":
        raise SystemExit("unset QMAC_ORACLE_RESOLVER: the recording is of the reference kernels")
    records = {}
    for name, (make, resolver) in SUITES.items():
        cases = make()
        results = run_oracle(cases, resolver)
        refused = [r["error"] for r in results if "error" in r]
        if refused:
            raise SystemExit(f"{name}: TFLite refused a case: {refused[0]}")
        records[name] = {"resolver": resolver, "cases": cases, "results": results}
        print(f"{name}: {len(cases)} cases on {resolver}")
    save_recording(records)
    print(f"wrote {RECORDING} ({RECORDING.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
