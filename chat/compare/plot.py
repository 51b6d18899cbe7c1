"""``--plot FILE.png``: latency CDF per mode, and what one delivered message costs.

matplotlib is an optional extra (``pip install 'chatlab[plot]'``); without it the lab says so
instead of failing after the run.
"""

from __future__ import annotations

from typing import Any


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def write_plot(result: dict[str, Any], path: str) -> None:
    """Two panels: the latency CDF (log scale) and requests / bytes per delivered message."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'chatlab[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes: dict[str, Any] = result["modes"]
    fig, (cdf, cost) = plt.subplots(1, 2, figsize=(12, 4.5))
    for mode, figures in modes.items():
        points = figures["cdf"]
        if points:
            cdf.plot([max(ms, 0.001) for ms, _ in points], [p for _, p in points], label=mode)
    cdf.set_xscale("log")
    cdf.set_xlabel("delivery latency (ms, from intended send time)")
    cdf.set_ylabel("percentile")
    cdf.set_title("Latency CDF")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend()

    names = list(modes)
    xs = range(len(names))
    width = 0.4
    cost.bar([x - width / 2 for x in xs], [modes[m]["bytes_in_per_msg"] for m in names],
             width, label="bytes in / msg")
    cost.bar([x + width / 2 for x in xs], [modes[m]["bytes_out_per_msg"] for m in names],
             width, label="bytes out / msg")
    cost.set_xticks(list(xs), names)
    cost.set_ylabel("bytes per delivered message (per client)")
    cost.set_title("Cost per delivered message")
    requests = cost.twinx()
    requests.plot(list(xs), [modes[m]["requests_per_msg"] for m in names], "ko-",
                  label="requests / msg")
    requests.set_ylabel("requests per delivered message")
    handles = cost.get_legend_handles_labels()
    more = requests.get_legend_handles_labels()
    cost.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
    opts = result["options"]
    fig.suptitle(f"chat compare: {opts['clients']} clients/mode, {opts['rate']:g} msg/s, "
                 f"{opts['duration']:g} s, poll interval {opts['interval']:g} s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
