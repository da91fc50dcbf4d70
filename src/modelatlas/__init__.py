"""modelatlas: explore AI models, compare them on your own data, improve and deploy them."""

__version__ = "0.1.0"
