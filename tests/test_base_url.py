"""The links' base URL: https, or plain http on this machine only (RC-6, RS-5)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import LinkRules, Secret, Settings, SettingsError, TokenPurpose
from securepractice.verification.tokens import build_link

LOOPBACK_NETWORK = ipaddress.ip_network("127.0.0.0/8")


def refusal(base_url: object) -> SettingsError:
    """The error of links built with ``base_url``."""
    with pytest.raises(SettingsError) as caught:
        LinkRules(base_url=base_url)  # type: ignore[arg-type]
    assert caught.value.field == "base_url"
    return caught.value


@pytest.mark.parametrize(
    "base_url",
    [
        "https://portal.example",
        "https://portal.example:8443/app/",
        "https://203.0.113.7",
        "https://[2001:db8::1]/",
        "http://localhost",
        "http://LOCALHOST:8000/",
        "http://127.0.0.1:8000",
        "http://127.255.255.254/portal",
        "http://[::1]:8000",
    ],
)
def test_rc_6_https_anywhere_and_http_on_a_loopback_host(base_url: str) -> None:
    """RC-6: any https address, and http for localhost, 127.0.0.0/8 and ::1, build links."""
    rules = Settings(links=LinkRules(base_url=base_url)).links
    link = build_link(Secret("t0k3n"), purpose=TokenPurpose.PASSWORD_RESET, rules=rules)
    assert link.reveal().startswith(base_url.rstrip("/") + "/")


@pytest.mark.parametrize(
    "base_url",
    [
        "http://portal.example",
        "http://portal.example:443/",
        "HTTP://Portal.Example",
        "http://10.0.0.7:8000",
        "http://0.0.0.0:8000",
        "http://128.0.0.1",
        "http://[::ffff:127.0.0.1]/",
        "http://[::2]/",
        "http://localhost.portal.example",
        "http://127.0.0.1.nip.io",
        "http://localhost@portal.example",
    ],
)
def test_rc_6_plain_http_elsewhere_is_a_settings_error(base_url: str) -> None:
    """RC-6: http to any other host would send tokens in clear: a clear, stable error."""
    error = refusal(base_url)
    assert error.code == "settings.insecure_base_url"
    assert "https" in error.message
    assert "loopback" in error.message


@pytest.mark.parametrize(
    "base_url",
    [
        "portal.example",
        "ftp://portal.example",
        "https://",
        "https://portal.example/?next=x",
        "https://portal.example/#top",
        "https://portal.example:99999",
        "http://[::1",
        "https://user:hunter2@portal.example",
        42,
        b"https://portal.example",
    ],
)
def test_rc_6_an_address_that_is_no_https_url_is_a_settings_error(base_url: object) -> None:
    """RC-6, RS-5: malformed addresses are refused with the settings code, never a crash."""
    error = refusal(base_url)
    assert error.code == "settings.invalid"
    assert "hunter2" not in str(error)


@given(address=st.ip_addresses(v=4))
def test_rc_6_http_is_allowed_for_exactly_the_ipv4_loopback_block(
    address: ipaddress.IPv4Address,
) -> None:
    """RC-6: for every IPv4 address, http is accepted if and only if it is in 127.0.0.0/8."""
    base_url = f"http://{address}:8000"
    if address in LOOPBACK_NETWORK:
        assert LinkRules(base_url=base_url).base_url == base_url
    else:
        assert refusal(base_url).code == "settings.insecure_base_url"


@given(address=st.ip_addresses(v=6))
def test_rc_6_http_is_allowed_for_the_one_ipv6_loopback_address(
    address: ipaddress.IPv6Address,
) -> None:
    """RC-6: for every IPv6 address, http is accepted if and only if it is ::1."""
    base_url = f"http://[{address}]/"
    if address == ipaddress.IPv6Address("::1"):
        assert LinkRules(base_url=base_url).base_url == base_url
    else:
        assert refusal(base_url).code == "settings.insecure_base_url"


@given(address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_rc_6_https_is_allowed_for_every_address(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """RC-6: https is accepted whatever the host."""
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    assert LinkRules(base_url=f"https://{host}").base_url == f"https://{host}"
