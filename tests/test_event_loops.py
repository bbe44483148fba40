"""The event loops a module opts into (tests/conftest.py) are really asyncio's and uvloop's."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])


async def test_each_parameter_runs_on_its_own_loop(loop_name: str) -> None:
    module = type(asyncio.get_running_loop()).__module__
    if loop_name == "uvloop":
        assert module.startswith("uvloop")
    else:
        assert loop_name == "asyncio"
        assert module.startswith("asyncio")


@pytest.mark.asyncio  # closer than the module's mark: this test did not opt in
async def test_a_test_that_does_not_opt_in_runs_once_on_the_policy_loop(
    request: pytest.FixtureRequest, loop_name: str
) -> None:
    assert loop_name == "policy"
    assert "[" not in request.node.name
