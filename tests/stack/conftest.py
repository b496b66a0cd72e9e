"""Fixtures for tests/stack: the real stack from docker-compose.yml (demo identity provider), started
once per session under the compose project "devhubtest" (see tests/stack/compose.test.yml)."""

from __future__ import annotations

import pytest

from stack_support import (  # noqa: F401 - re-exported for the test modules
    ROOT, HubSession, Stack, cleanup_hub_objects, hub_api, stack_env, start_server, stop_server, user_container,
)
from support import free_port


@pytest.fixture(scope="session")
def stack(docker_client) -> Stack:
    https_port, http_port, ssh_port = free_port(), free_port(), free_port()
    stack = Stack(https_port, http_port, ssh_port, stack_env(https_port, http_port, ssh_port))
    cleanup_hub_objects(docker_client)
    stack.compose("down", "-v", check=False)
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "180", timeout=400)
        yield stack
    finally:
        logs = stack.compose("logs", "--no-color", "hub", check=False).stdout
        (ROOT / "tests" / "artifacts").mkdir(exist_ok=True)
        (ROOT / "tests" / "artifacts" / "stack-hub.log").write_text(logs)
        cleanup_hub_objects(docker_client)
        stack.compose("down", "-v", check=False)


@pytest.fixture(scope="session")
def alice(stack) -> HubSession:
    return stack.login("alice")


@pytest.fixture(scope="session")
def bob(stack) -> HubSession:
    return stack.login("bob")


@pytest.fixture(scope="session")
def alice_token(alice) -> str:
    return alice.token()


@pytest.fixture(scope="session")
def bob_token(bob) -> str:
    return bob.token()
