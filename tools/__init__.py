"""Developer tools (not installed with the package): the model-bytes fuzzer, fuzz_models.py."""
