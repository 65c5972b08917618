"""Figures (matplotlib): cluster images band by band, and model performance.

Every function takes an optional ``ax``/``fig`` and returns the figure, and
never calls ``plt.show()``; save with ``fig.savefig(path)``.
"""

from .images import DEFAULT_PLOT_BANDS_KEV, plot_cluster_bands  # noqa: E402

__all__ = ["DEFAULT_PLOT_BANDS_KEV", "plot_cluster_bands"]
