"""The benchmark's results as a PNG plot; matplotlib is imported only when :func:`plot` is called."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .report_format import fmt_mib, fmt_x, summary_of
from .shaping import format_rate


def plot(results: dict[str, Any], path: Path) -> None:
    """Three panels: overhead ratios (targets dashed), speedup per link, amplification per node count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    links = results["links"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1.3, 0.8, 1.2]})

    def bars(ax, positions, summaries, color, label):
        medians = [s.median for s in summaries]
        errors = [[s.median - s.low for s in summaries], [s.high - s.median for s in summaries]]
        ax.bar(positions, medians, width=0.35, color=color, label=label, yerr=errors, capsize=4)
        for x, s in zip(positions, summaries):
            ax.annotate(fmt_x(s.median), (x, s.high), textcoords="offset points", xytext=(0, 3), ha="center",
                        fontsize=8)

    ax = axes[0]
    labelled: set[int] = set()
    for j, key in enumerate(("cold_over_direct", "warm_over_local")):
        having = [i for i, link in enumerate(links) if key in link["ratios"]]
        for n, i in enumerate(having):
            bars(ax, [j + (n - (len(having) - 1) / 2) * 0.37], [summary_of(links[i]["ratios"][key])], f"C{i}",
                 None if i in labelled else format_rate(links[i]["rate_bits"]))
            labelled.add(i)
    ax.axhline(1.10, color="black", linestyle="--", linewidth=1, label="target 1.10")
    ax.set_xticks([0, 1], ["(1) cold via cache\n÷ direct", "(2) warm via cache\n÷ local registry"])
    ax.set_ylabel("time ratio (lower is better)")
    ax.set_title("Cache overhead")
    ax.legend(fontsize=8)

    ax = axes[1]
    summaries = [summary_of(link["ratios"]["cold_over_warm"]) for link in links]
    bars(ax, list(range(len(links))), summaries, "C2", None)
    ax.set_xticks(list(range(len(links))), [format_rate(link["rate_bits"]) for link in links])
    ax.set_ylabel("cold ÷ warm (higher is better)")
    ax.set_title("(3) Speedup of a warm cache")

    ax = axes[2]
    counts = sorted({c["count"] for c in results["amplification"]})
    for i, warm in enumerate((False, True)):
        cases = {c["count"]: c for c in results["amplification"] if c["with_warmup"] == warm}
        summaries = [summary_of(cases[n]["total"]) for n in counts if n in cases]
        bars(ax, [j + (i - 0.5) * 0.37 for j, n in enumerate(counts) if n in cases], summaries, f"C{3 + i}",
             "after the warm-up (its cost included)" if warm else "no warm-up")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="1.0 = each byte once")
    ax.set_xticks(list(range(len(counts))), [f"{n} node{'s' if n > 1 else ''}" for n in counts])
    ax.set_ylabel("upstream bytes ÷ image bytes")
    ax.set_title(f"(4) Upstream amplification at {format_rate(results['settings']['amp_rate_bits'])}")
    ax.legend(fontsize=8)

    settings = results["settings"]
    delay = settings["delay_seconds"]
    fig.suptitle(f"Image delivery through the caches: {fmt_mib(settings['image_bytes'])} of images per node, upstream "
                 f"{format_rate(settings['rate_bits'])}{f' + {delay * 1000:.0f} ms' if delay else ', no added delay'}, "
                 f"registry {results['machine']['registry']}, containerd {results['machine']['containerd']}, "
                 f"{results['machine']['cpus']} CPUs — {results['taken']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
