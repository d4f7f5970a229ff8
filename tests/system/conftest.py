import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so tests can `import vm`


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "vm: boots a QEMU guest with v4l2loopback (slow; BACKDROP_VM_TEST=1 forces it)")
