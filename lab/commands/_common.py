"""What every drlab command shares: the --state-dir option, friendly errors, consoles."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.console import Console

from .. import launcher
from ..errors import TopologyError
from ..kit.labinfo import LabNotFound, read_lab

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def state_dir_option(f):
    @click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="DRLAB_STATE_DIR",
        default=None,
        help="The lab's state directory (default: .lab/ in the checkout; env DRLAB_STATE_DIR).",
    )
    @functools.wraps(f)
    def wrapper(*args, state_dir=None, **kwargs):
        return f(*args, state_dir=(state_dir or launcher.default_state_dir()).resolve(), **kwargs)

    return wrapper


def friendly_errors(f):
    """Users get a message, not a traceback, for the errors they can fix."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (launcher.LabError, TopologyError, LabNotFound, ValueError) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            sys.exit(1)
        except Exception as exc:
            # An Azure SDK error is the service's answer (e.g. a refused enable): show its
            # message. Checked by module so the CLI does not import the SDK to start.
            azure = sys.modules.get("azure.core.exceptions")
            if azure is not None and isinstance(exc, azure.AzureError):
                err.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=False)
                sys.exit(1)
            raise

    return wrapper


def lab_info(state_dir: Path) -> dict:
    """lab.json of a lab that must be running."""
    lab = read_lab(state_dir)
    if lab.get("status") != "running":
        raise launcher.LabError(f"the lab in {state_dir} is not running; start it with `drlab up`")
    return lab
