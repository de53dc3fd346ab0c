"""The command line parses every documented form into the options the front ends read."""

from __future__ import annotations

from ibpanel.cli import parse_args


def _serve_args(*argv: str):
    return parse_args(["serve", *argv])


def test_serve_defaults_bind_loopback_port_5000():
    args = _serve_args()
    assert (args.command, args.api_host, args.api_port, args.demo) == ("serve", "127.0.0.1", 5000, False)


def test_serve_port_zero_and_host_aliases_are_honoured():
    args = _serve_args("--demo", "--host", "0.0.0.0", "--port", "0", "--api-token", "x" * 20)
    assert (args.api_host, args.api_port, args.demo, args.api_token) == ("0.0.0.0", 0, True, "x" * 20)


def test_gui_options():
    args = parse_args(["--demo", "--screenshot", "out.png", "--tab", "quotes", "--profile", "work"])
    assert (args.command, args.demo, args.screenshot, args.tab, args.profile) == (None, True, "out.png", "quotes", "work")
    assert args.api is False and args.smoke_test is False
