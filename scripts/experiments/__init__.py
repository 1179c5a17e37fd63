"""One-question experiment scripts (see README.md here); run as `python -m scripts.experiments.<name>`."""
