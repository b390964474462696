"""Ready-made trainables on scikit-learn's bundled datasets, used by the example specs."""
