"""Analysis of instability (thesis 13.1.1): per-layer Lipschitz bounds and the growth of
adversarial versus random perturbations through a network."""
from .layer_growth import GrowthTable, default_layers, layer_growth, plot_layer_growth
from .lipschitz import LayerBound, LipschitzBounds, lipschitz_bounds, spectral_norm

__all__ = ["GrowthTable", "LayerBound", "LipschitzBounds", "default_layers", "layer_growth", "lipschitz_bounds",
           "plot_layer_growth", "spectral_norm"]
