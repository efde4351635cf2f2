"""Real market data bundled with Alfred (parquet + ``manifest.json`` + ``PROVENANCE.md``).

Read it through ``engine.data.load_bars("sp500_stocks")`` / ``list_datasets()``; this
package holds only files. ``python -m alfred_data.build`` rebuilds them from the PyPI
packages that ship the originals (skfolio, arch, backtesting), which loading never imports.
"""
