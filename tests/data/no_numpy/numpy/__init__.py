# Put first on PYTHONPATH, this stands in for a Python environment without numpy (a fresh `python -m venv` with the
# torch CPU wheel, which does not pull numpy): every import of numpy fails as it would there.
raise ModuleNotFoundError("No module named 'numpy'", name="numpy")
