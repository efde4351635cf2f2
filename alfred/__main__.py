"""``python -m engine`` runs the ``alfred`` command line."""

from alfred.cli import app

# Guarded: report workers are started with ``spawn``, which imports the main module again.
if __name__ == "__main__":
    app(prog_name="alfred")
