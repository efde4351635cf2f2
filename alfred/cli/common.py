"""What every ``alfred`` command shares: consoles and the exit-code contract.

Exit codes: 0 success, 1 the run failed (a bug or an environment problem: the traceback
is shown), 2 bad input (a one-paragraph message naming the file and key, no traceback;
also a full disk or an output path that cannot be written, named), 130 interrupted.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from alfred.outputs import DISK_FULL, PATH_ERRNOS, output_error
from engine.errors import AlfredError, ConfigError, DataError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# Options shared by the commands that fan out (sweep, walkforward, stress) or write a run.
ExecutorOpt = Annotated[str | None, typer.Option(help="local, ray or inline (default: the "
                                                  "scenario's executor: section).")]
WorkersOpt = Annotated[str | None, typer.Option(help="Worker processes: auto or N >= 1.")]
RunOutOpt = Annotated[str | None, typer.Option("--out", "-o", help="Run folder (default: "
                                               "output.directory, else runs/<name>/<time>).")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing run folder.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
AddressOpt = Annotated[str | None, typer.Option(help="Ray address: local, auto or "
                                                "ray://host:port (default: "
                                                "$ALFRED_RAY_ADDRESS, else local).")]
TrustOpt = Annotated[bool, typer.Option("--trust-scenario", help="Let the scenario file "
                                        "name a Ray cluster (executor.address); only for "
                                        "files you wrote.")]


def executor_override(scenario: Any, kind: str | None,
                      address: str | None) -> dict[str, Any] | None:
    """The scenario's executor with the CLI's --executor/--address on top (None: neither)."""
    if kind is None and address is None:
        return None
    spec = scenario.executor.model_dump()
    if kind is not None:
        spec["kind"] = kind
    if address is not None:
        spec["address"] = address
    return spec


def out_console() -> Console:
    # Built per use, not at import, so COLUMNS and redirected streams are honoured.
    return Console()


def err_console() -> Console:
    return Console(stderr=True)


@contextmanager
def exit_codes(interrupted: str = "interrupted; no run folder was written") -> Iterator[None]:
    """Map exceptions to exit codes: input errors get a message, bugs a traceback."""
    try:
        yield
    except (ConfigError, DataError) as exc:
        err_console().print(Text("error: ", style="bold red") + Text(str(exc)))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except AlfredError as exc:
        err_console().print(Text("run failed: ", style="bold red") + Text(str(exc)))
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        err_console().print(Text(interrupted, style="yellow"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (typer.Exit, typer.Abort):
        raise
    except OSError as exc:
        if not is_path_problem(exc):
            _report_bug()
            raise typer.Exit(EXIT_FAILED) from None
        err_console().print(Text("error: ", style="bold red") + Text(str(output_error(exc))))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception:
        _report_bug()
        raise typer.Exit(EXIT_FAILED) from None


def _report_bug() -> None:
    err_console().print(Text("run failed with an unexpected error (a bug; please report "
                             "it with this traceback):", style="bold red"))
    err_console().print(Text(traceback.format_exc()))


def is_path_problem(exc: OSError) -> bool:
    """A full disk, or a path that cannot be written (named by the error): the user's to fix."""
    return exc.errno in DISK_FULL or (exc.filename is not None and exc.errno in PATH_ERRNOS)
