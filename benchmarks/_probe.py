"""Peak memory of one W2 run, measured in a fresh subprocess.

``python -m benchmarks._probe memory-ours|memory-vectorbt '<json settings>'`` prints one
JSON line. ``ru_maxrss`` is a high-water mark, so each figure is the peak *up to* that
point: after the imports, after a tiny warm-up call (numba's cache load or compilation,
which would otherwise hide inside the run's figure), after the inputs are built. Then the
kernel's high-water mark is reset (``/proc/self/clear_refs``) so the peak of the run
phase shows even when building the inputs peaked higher. Only ``-m`` runs this module.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from typing import Any


def _peak_mb() -> float:
    # Linux reports ru_maxrss in KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def _status_mb(key: str) -> float | None:
    """A line of /proc/self/status (VmRSS now, VmHWM the address space's peak) in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError):
        pass
    return None


def _inputs(settings: dict[str, Any]) -> tuple[Any, Any, Any]:
    from benchmarks._data import stocks_panel, tiled_panel
    from benchmarks._signals import sma_crossover

    panel = tiled_panel(stocks_panel(settings["n_bars"]), settings["copies"],
                        seed=settings["seed"], noise_sigma=settings["noise_sigma"])
    long_entry, short_entry = sma_crossover(panel.close, settings["fast"], settings["slow"])
    return panel, long_entry, short_entry


def memory_ours(settings: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from benchmarks import _ours
    from benchmarks._data import tiled_panel

    after_imports = _peak_mb()
    tiny = tiled_panel(_tiny_panel(), 1)
    flags = np.zeros(tiny.close.shape, dtype=bool)
    flags[1, 0] = True
    _ours.run_sma_signals(tiny, flags, np.zeros_like(flags), 1.0, 100.0)
    baseline = _peak_mb()
    panel, long_entry, short_entry = _inputs(settings)
    after_inputs, before_run, reset = _before_run()
    start = time.perf_counter()
    result = _ours.run_sma_signals(panel, long_entry, short_entry,
                                   settings["capital"] / panel.n_assets, settings["capital"])
    _ = result.equity
    elapsed = time.perf_counter() - start
    kept = sum(np.asarray(a).nbytes for a in result.records) / 1e6
    return _memory_report(after_imports, baseline, after_inputs, before_run, reset,
                          elapsed, result.final_equity, panel, kept)


def memory_vectorbt(settings: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from benchmarks import _vbt
    from benchmarks._data import tiled_panel

    _vbt._vbt()  # import vectorbt (and pandas) into the baseline
    after_imports = _peak_mb()
    tiny = tiled_panel(_tiny_panel(), 1)
    flags = np.zeros(tiny.close.shape, dtype=bool)
    flags[1, 0] = True
    _vbt.run_signals(_vbt.prepare_signals(tiny, flags, np.zeros_like(flags)), 1.0, 100.0)
    baseline = _peak_mb()
    panel, long_entry, short_entry = _inputs(settings)
    frames = _vbt.prepare_signals(panel, long_entry, short_entry)
    after_inputs, before_run, reset = _before_run()
    start = time.perf_counter()
    _, equity = _vbt.run_signals(frames, settings["capital"] / panel.n_assets,
                                 settings["capital"])
    elapsed = time.perf_counter() - start
    return _memory_report(after_imports, baseline, after_inputs, before_run, reset, elapsed,
                          float(equity[-1]), panel)


def _tiny_panel() -> Any:
    from benchmarks._data import stocks_panel

    return stocks_panel(8)


def _current_mb() -> float | None:
    return _status_mb("VmRSS:")


def _before_run() -> tuple[float, float | None, bool]:
    """(peak so far, current RSS, whether the high-water mark could be reset)."""
    gc.collect()
    peak = _peak_mb()
    current = _current_mb()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # 5 = reset the peak RSS to the current RSS (Linux >= 4.0)
        return peak, current, True
    except OSError:
        return peak, current, False


def _memory_report(after_imports: float, baseline: float, after_inputs: float,
                   before_run: float | None, reset: bool, elapsed: float,
                   final_equity: float, panel: Any, kept_mb: float | None = None
                   ) -> dict[str, Any]:
    """All in MB (1e6 bytes). ``run_phase_peak_mb`` is the highest RSS while the run was
    going (inputs still held); it cannot be split further by RSS, because the allocator
    hands the run heap pages freed while building the inputs."""
    run_peak = _peak_mb()
    peak = max(after_inputs, run_peak)
    return {"after_imports_mb": after_imports, "baseline_mb": baseline,
            "after_inputs_mb": after_inputs, "before_run_rss_mb": before_run,
            "run_phase_peak_mb": run_peak if reset else None, "peak_mb": peak,
            "over_baseline_mb": peak - baseline, "result_arrays_mb": kept_mb,
            "peak_vm_hwm_mb": _status_mb("VmHWM:"), "hwm_reset": reset, "run_s": elapsed,
            "final_equity": final_equity, "n_bars": panel.n_bars, "n_assets": panel.n_assets}


_PROBES = {"memory-ours": memory_ours, "memory-vectorbt": memory_vectorbt}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in _PROBES:
        print(f"usage: python -m benchmarks._probe {{{'|'.join(_PROBES)}}} '<json settings>'",
              file=sys.stderr)
        return 2
    print(json.dumps(_PROBES[argv[0]](json.loads(argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
