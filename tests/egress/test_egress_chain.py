"""EGRESS_UPSTREAM_PROXY for company networks: devhub's egress proxy forwards everything through a
parent proxy (here a second devhub/egress that allows any host, with its own credentials) and never
goes direct. Real squid on both ends, a hardened user server behind them."""

from egress_support import EgressLab, egress, log_lines


def test_egress_chains_to_the_company_proxy_and_never_goes_direct(docker_client):
    lab = EgressLab(docker_client)
    try:
        parent, parent_key = lab.proxy("company", {"EGRESS_ALLOW": "*"})
        login = f"devhub:{egress.password(parent_key, 'devhub')}"
        _, key = lab.proxy("egress", {"EGRESS_UPSTREAM_PROXY": f"http://{login}@{parent.name}:3128"}, user_alias="egress")
        alice = lab.user_server(key, "alice")
        fetch = ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", "https://pypi.org/simple/six/"]
        through = alice.exec_run(fetch)
        assert through.output.decode() == "200", through.output
        # The company proxy saw it, as devhub's proxy (its own credentials), not as alice.
        assert any(e["host"] == "pypi.org" and e["user"] == "devhub" and e["verdict"] == "TCP_TUNNEL"
                   for e in log_lines(parent)), log_lines(parent)
        # devhub's own rules still apply before the parent: internal addresses are refused.
        internal = alice.exec_run(["curl", "-sS", "--max-time", "30", "http://169.254.169.254/"])
        assert b"is an internal address" in internal.output, internal.output
        # Without the company proxy nothing gets out (never_direct).
        parent.stop(timeout=5)
        cut = alice.exec_run(fetch)
        assert cut.exit_code == 56 and b"from proxy after CONNECT" in cut.output, cut.output
    finally:
        lab.close()
