"""``serve --workers``: how many processes a value asks for, and the command
line each child gets."""

from __future__ import annotations

import argparse
import os
import sys

import pytest

from gateway.cli import build_parser
from gateway.supervisor import child_command, forwarded_args, worker_count


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("3", 3), ("256", 256)])
def test_a_number_is_that_many_processes(value: str, expected: int) -> None:
    assert worker_count(value) == expected


@pytest.mark.parametrize("value", ["auto", "0"])
def test_auto_and_zero_mean_one_per_cpu(value: str) -> None:
    assert worker_count(value) == (os.cpu_count() or 1)


@pytest.mark.parametrize("value", ["-1", "257", "two", ""])
def test_anything_else_is_a_usage_error(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        worker_count(value)


def test_children_get_the_same_options_and_an_absolute_config() -> None:
    args = build_parser().parse_args(
        ["serve", "--workers", "2", "--port", "9000", "--host", "127.0.0.2", "--no-dispatch",
         "--log-level", "WARNING", "--config", "rel/lendsms.toml"]
    )  # fmt: skip
    assert args.workers == 2 and not args.child
    command = child_command(args.config, forwarded_args(args))
    assert command[:5] == [sys.executable, "-m", "gateway.cli", "serve", "--child"]
    assert command[5:-2] == ["--host", "127.0.0.2", "--port", "9000", "--log-level", "WARNING",
                             "--no-dispatch"]  # fmt: skip
    assert command[-2] == "--config" and os.path.isabs(command[-1])
    assert "--workers" not in command  # a child is one process
