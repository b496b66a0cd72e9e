"""Deleting a user through the admin API removes their home volume, and stops their named servers
first (JupyterHub itself stops only the default one): a later user of the same name starts empty.
(Runs last in tests/stack: it deletes bob.)"""

from stack_support import hub_api, start_server, stop_server
from support import wait_until


def test_deleting_a_user_removes_their_home_volume(stack, bob_token, alice_token, docker_client):
    start_server(stack, bob_token, "bob")
    stop_server(stack, bob_token, "bob")
    start_server(stack, bob_token, "bob", server="exp1")  # still running when bob is deleted
    assert docker_client.volumes.get("devhubtest-home-bob")
    assert hub_api(stack, alice_token, "DELETE", "/users/bob").status_code == 204
    wait_until(lambda: "devhubtest-home-bob" not in {v.name for v in docker_client.volumes.list()}, 60,
               interval=0.5, what="bob's volume to be removed")
    assert hub_api(stack, alice_token, "GET", "/users/bob").status_code == 404
    assert not docker_client.containers.list(all=True, filters={"name": "^/devhubtest-user-bob-s-exp1$"})
    assert not docker_client.networks.list(names=["devhubtest-user-bob-s-exp1"])
    # The default server's network, kept since its stop, goes with the user too.
    assert "devhubtest-user-bob" not in {n.name for n in docker_client.networks.list(names=["devhubtest-user-bob"])}
