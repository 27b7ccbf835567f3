"""The fidelity layer the tests use: :mod:`reconciler.emulator`, re-exported under its old
name so that tests keep importing ``from tests.fidelity import ...``. The code lives in the
package because ``reconciler demo`` serves the same emulator (one emulator, not two)."""

from reconciler import emulator as _emulator
from reconciler.emulator import *  # noqa: F403

__all__ = _emulator.__all__
