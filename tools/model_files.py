"""Where the committed models of tests/models and their data live: shared by
tools/make_models.py (the converter environment) and tools/record_model_oracle.py (the
oracle environment), which cannot import each other's packages."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "tests" / "models"
DATA_DIR = MODELS_DIR / "data"
#: the digits test split: grey levels as uint8 NHWC and labels (tools/make_models.py)
TEST_DATA = DATA_DIR / "digits_test.npz"
#: digits are grey levels 0..16; the networks see them divided by this.
GREY_LEVELS = 16
