"""Figures (matplotlib): cluster images band by band, model performance, and what
the networks look at (saliency, radial and band importance).

Every function takes an optional ``ax``/``fig`` and returns the figure, and
never calls ``plt.show()``; save with ``fig.savefig(path)``.
"""

from .explain import (
    plot_attribution_maps,
    plot_band_importance,
    plot_explanation,
    plot_origin_importance,
    plot_radial_importance,
)
from .images import DEFAULT_PLOT_BANDS_KEV, plot_cluster_bands, plot_model_input
from .performance import (
    plot_calibration,
    plot_performance,
    plot_predicted_vs_true,
    plot_residuals,
    plot_residuals_vs_mass,
    plot_residuals_vs_redshift,
    plot_transfer,
)

__all__ = [
    "DEFAULT_PLOT_BANDS_KEV",
    "plot_attribution_maps",
    "plot_band_importance",
    "plot_explanation",
    "plot_origin_importance",
    "plot_radial_importance",
    "plot_calibration",
    "plot_cluster_bands",
    "plot_model_input",
    "plot_performance",
    "plot_predicted_vs_true",
    "plot_residuals",
    "plot_residuals_vs_mass",
    "plot_residuals_vs_redshift",
    "plot_transfer",
]
