"""The security suite shares the fault suite's leak-checked ``fsmove`` runner."""

from tests.faults.conftest import fsmove

__all__ = ["fsmove"]
