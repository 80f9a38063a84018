import pytest

from components import agent_tokens as at

KEY = b"k" * 32


def test_round_trip():
    token = at.issue(KEY, "agent-1", "vm-uuid", now=1000)
    ident = at.verify(KEY, token, now=1001)
    assert (ident.agent_id, ident.vm_id, ident.expires) == ("agent-1", "vm-uuid", 1000 + 3600)
    assert at.from_header(KEY, f"Agent {token}", now=1001) == ident


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("agent-1", "agent-2"),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t + ".x",
        lambda t: "nonsense",
    ],
)
def test_forged_tokens_are_refused(mangle):
    token = at.issue(KEY, "agent-1", "vm-uuid", now=1000)
    with pytest.raises(at.AgentTokenError):
        at.verify(KEY, mangle(token), now=1001)


def test_other_key_and_expiry():
    token = at.issue(KEY, "a", "v", lifetime=10, now=1000)
    with pytest.raises(at.AgentTokenError):
        at.verify(b"z" * 32, token, now=1001)
    with pytest.raises(at.AgentTokenError, match="expired"):
        at.verify(KEY, token, now=2000)


@pytest.mark.parametrize("header", [None, "", "Bearer x", "Agent "])
def test_bad_headers(header):
    with pytest.raises(at.AgentTokenError):
        at.from_header(KEY, header)
